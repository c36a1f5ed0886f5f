/// The process's heap, as the kernel sees it.
public enum ProcessMemory {
    /// Gives the heap's freed pages back to the system (`malloc_trim`): glibc keeps them otherwise,
    /// and a sync that freed a large state before building a table's blob would still hold both.
    public static func returnFreedPages() {
        Shim.releaseFreeMemory()
    }
}
