use std::time::Duration;

use roomraft_cluster::tls::CertificateAuthority;

use crate::harness::TestCluster;

fn client(material: &roomraft_cluster::tls::TlsMaterial) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(material.peer_client_config().unwrap())
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_listener_refuses_certificates_from_another_ca() {
    let c = TestCluster::start(21070, 3, |_| {}).await;
    let peer = &c.configs[&1].advertise.peer_addr;
    let url = format!("https://{peer}/cluster/read-index");

    // A certificate from the cluster CA is accepted (the request reaches the handler).
    let good = client(&c.tls[&2])
        .post(&url)
        .body(bincode::serialize(&()).unwrap())
        .send()
        .await;
    assert!(good.is_ok_and(|r| r.status().is_success()));

    // The same server, trusted, but the client presents a certificate from a foreign CA: refused
    // during the TLS handshake.
    let rogue_ca = CertificateAuthority::generate("rogue").unwrap();
    let rogue_cert = rogue_ca.issue("rogue", &["127.0.0.1".into()]).unwrap();
    let rogue = roomraft_cluster::tls::TlsMaterial::from_pem(
        c.ca.cert_pem().into_bytes(),
        rogue_cert.cert_pem.into_bytes(),
        rogue_cert.key_pem.into_bytes(),
    );
    let refused = client(&rogue)
        .post(&url)
        .body(bincode::serialize(&()).unwrap())
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a foreign certificate must be refused: {refused:?}"
    );
    let node1 = c.nodes[&1].as_ref().unwrap();
    assert_eq!(
        node1.metrics().peer_certificates_refused.get(),
        1,
        "the refusal is counted"
    );

    // No client certificate at all: refused as well.
    let no_cert = reqwest::Client::builder()
        .use_preconfigured_tls(
            roomraft_cluster::tls::api_client_config(c.ca.cert_pem().as_bytes()).unwrap(),
        )
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let refused = no_cert.post(&url).body(Vec::new()).send().await;
    assert!(
        refused.is_err(),
        "a peer without a certificate must be refused"
    );
}

/// The server's ends of this process's TCP connections on `port` (not its listening socket),
/// each with whether TCP_NODELAY is set on it.
fn accepted_nodelay(port: u16) -> Vec<bool> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: the calls only read socket options into local buffers of the stated sizes; a
        // descriptor that is not a socket (or was closed meanwhile) makes them fail, and is skipped.
        unsafe {
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let addr_ptr = &mut addr as *mut libc::sockaddr_in as *mut libc::sockaddr;
            if libc::getsockname(fd, addr_ptr, &mut len) != 0
                || addr.sin_family != libc::AF_INET as libc::sa_family_t
                || u16::from_be(addr.sin_port) != port
                || libc::getpeername(fd, addr_ptr, &mut len) != 0
            {
                continue;
            }
            let mut on: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let on_ptr = &mut on as *mut libc::c_int as *mut libc::c_void;
            if libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on_ptr, &mut len) == 0 {
                found.push(on != 0);
            }
        }
    }
    found
}

/// Answers go out as several small TLS records; with Nagle's algorithm on, the later ones waited
/// for the peer's delayed acknowledgement (up to 40 ms), which stalled every commit behind an
/// append answer. Every accepted connection must have TCP_NODELAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_set_tcp_nodelay_on_accepted_connections() {
    let ca = CertificateAuthority::generate("nodelay").unwrap();
    let material = ca.node_material("node", &["127.0.0.1".into()]).unwrap();
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let addr = roomraft_cluster::listener::serve_tls(
        "127.0.0.1:0".parse().unwrap(),
        material.client_listener_config().unwrap(),
        router,
        axum_server::Handle::new(),
        "test",
        roomraft_cluster::listener::ConnectionLimits::unlimited(),
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(
            roomraft_cluster::tls::api_client_config(ca.cert_pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let answer = http
        .get(format!("https://{addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(answer, "ok");
    // The client keeps its connection open in its pool, so the server's end is still there.
    assert_eq!(accepted_nodelay(addr.port()), vec![true]);
}
