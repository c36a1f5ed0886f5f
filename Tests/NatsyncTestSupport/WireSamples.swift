/// Kubernetes objects as kubectl and API servers write them, and variations of every shape: what
/// the fast JSON readers are checked against the reference decoder with.
public enum WireSamples {
    /// A Service as `kubectl get -o json` prints it: every field an API server returns.
    public static let service = #"""
        {"apiVersion":"v1","kind":"Service","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\"}}\n"},"creationTimestamp":"2026-11-27T12:00:00Z","labels":{"app":"web","tier":"caf\u00e9 \ud83d\ude00"},"managedFields":[{"apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{}}}},"manager":"kubectl","operation":"Update","time":"2026-11-27T12:00:00Z"}],"name":"web","namespace":"shop","resourceVersion":"4711","uid":"0b5f5b7e-8f67-4c57-9a43-3a0a8f3f1f4e"},"spec":{"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"externalIPs":["192.0.2.7"],"externalTrafficPolicy":"Local","healthCheckNodePort":31000,"internalTrafficPolicy":"Cluster","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","loadBalancerSourceRanges":["203.0.113.0/24"],"ports":[{"name":"http","nodePort":30080,"port":80,"protocol":"TCP","targetPort":8080},{"name":"dns","port":53,"protocol":"UDP","targetPort":"dns"}],"selector":{"app":"web"},"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":10800}},"type":"LoadBalancer","externalName":"unused.example"},"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.4","hostname":"lb.example","ipMode":"VIP"},{"hostname":"lb.example"}]}}}
        """#
    /// An EndpointSlice as kubectl prints it.
    public static let slice = #"""
        {"addressType":"IPv4","apiVersion":"discovery.k8s.io/v1","endpoints":[{"addresses":["10.244.1.5"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-1","hints":{"forNodes":[{"name":"node-1"}],"forZones":[{"name":"a"}]},"targetRef":{"kind":"Pod","name":"web-1","namespace":"shop","uid":"6c1c4d77-1d1b-4b7e-a0b6-6c9e3c0f6b41"},"zone":"a"},{"addresses":["10.244.2.6"],"conditions":{"ready":false,"serving":null},"hints":{"forZones":[{"name":"a"}]}}],"kind":"EndpointSlice","metadata":{"annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-11-27T12:00:00.123456789Z"},"creationTimestamp":"2026-11-27T12:00:00Z","generateName":"web-","generation":3,"labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","kubernetes.io/service-name":"web"},"name":"web-abcde","namespace":"shop","ownerReferences":[{"apiVersion":"v1","blockOwnerDeletion":true,"controller":true,"kind":"Service","name":"web","uid":"0b5f5b7e"}],"resourceVersion":"4712","uid":"1f0e"},"ports":[{"name":"http","port":8080,"protocol":"TCP"},{"appProtocol":"dns","name":"dns","port":53,"protocol":"UDP"}]}
        """#

    /// Objects the reader must read itself, and variations it may read or leave to JSONDecoder.
    public static let read = [
        service, slice,
        #"{"kind":"Service","metadata":{"name":"no-version","labels":{"path":"C:\\","q":"\\\"x\\\""}},"spec":{"ports":[]}}"#,
        #"{"kind":"Service","apiVersion":"v1","metadata":null,"spec":null,"status":{}}"#,
        #" { "apiVersion" : "v1" , "kind" : "Service" , "spec" : { "type" : null , "ports" : [ { "port" : 1 } ] } } "#,
        #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"x","labels":{}},"endpoints":[],"ports":null}"#,
        // Foundation's encoders escape every slash; names may hold any escape.
        #"{"apiVersion":"discovery.k8s.io\/v1","kind":"EndpointSlice","metadata":{"name":"y","labels":{"kubernetes.io\/service-name":"web"},"annot\u0061tions":{"a\/b":"c\/d"}},"endpoints":[]}"#,
    ]
    public static let others = [
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":"80"}]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":80.0}]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":1e2}]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":99999999999999999999}]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[null]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"clusterIPs":["10.0.0.1",null]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"clusterIP":"a","clusterIP":"b"}}"#,
        #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","n\u0061me":"b"}}"#,
        #"{"apiVersion":"v1","kind":"Service","metadata":{"labels":{"a":1}}}"#,
        #"{"apiVersion":"v1","kind":"Service","metadata":{"labels":{"a":null}}}"#,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"tab\tinside\"}}",
        #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"bad \q escape"}}"#,
        #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"lone \udc00"}}"#,
        #"{"apiVersion":"v2","kind":"Service"}"#,
        #"{"apiVersion":"v1","kind":"Endpoints","subsets":[]}"#,
        #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
        #"{"kind":"List","items":[]}"#,
        #"{"apiVersion":"v1","metadata":{"name":"no-kind"}}"#,
        #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","endpoints":[{"conditions":{"ready":"yes"}}]}"#,
        #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","endpoints":[{"conditions":{"ready":tru}}]}"#,
        #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","endpoints":{}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"targetPort":8080.5}]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":-0}]}}"#,
        #"{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":012}]}}"#,
        #"{"apiVersion":"v1","kind":"Service"} trailing"#,
        #"["not","an","object"]"#,
    ]

    /// Every sample but the two complete objects.
    public static var variations: [String] { Array(read.dropFirst(2)) + others }
}
