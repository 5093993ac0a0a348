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
