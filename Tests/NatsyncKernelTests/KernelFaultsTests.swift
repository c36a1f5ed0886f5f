#if DEBUG
import Glibc
import Testing

@testable import NatsyncKernel

/// How `NATSYNC_KERNEL_FAULTS` is read: a specification that cannot be read is refused, never
/// taken as no fault at all.
@Suite struct KernelFaultsTests {
    @Test func readsCallErrnoTimesAndSkip() throws {
        let faults = try KernelFaults.parse("natsync_writer_commit=EAGAINx2@1,natsync_blob_read=EIO").get()
        #expect(faults[.writerCommit] == KernelFaults.Fault(errno: EAGAIN, times: 2, skip: 1))
        #expect(faults[.blobRead] == KernelFaults.Fault(errno: EIO, times: nil, skip: 0))
        #expect(faults.count == 2)
    }

    @Test func everyShimCallCanBeNamed() throws {
        for call in Shim.Call.allCases {
            #expect(try KernelFaults.parse("\(call.rawValue)=EMLINKx1").get()[call] == KernelFaults.Fault(errno: EMLINK, times: 1, skip: 0))
        }
    }

    @Test(arguments: [
        ("natsync_nothing=EIO", "expected CALL=ERRNO"), ("natsync_blob_read", "expected CALL=ERRNO"),
        ("natsync_blob_read=EWHAT", "unknown errno EWHAT"), ("natsync_blob_read=EIOx0", "xTIMES must be a positive number"),
        ("natsync_blob_read=EIO@x", "@SKIP must be a number"),
    ])
    func refusesWhatItCannotRead(specification: String, reason: String) {
        guard case .failure(let error) = KernelFaults.parse(specification) else {
            Issue.record("\(specification) was accepted")
            return
        }
        #expect(error.reason.hasPrefix(reason), "\(error.reason)")
    }

    @Test func errorsNameTheirErrno() {
        let error = KernelError(errno: EMLINK, operation: "iptc_delete_chain", chain: .init("KUBE-SVC-X"), message: "in use")
        #expect(error.description == "iptc_delete_chain (chain KUBE-SVC-X): in use [EMLINK, errno 31]")
    }
}
#endif
