use std::collections::BTreeMap;
use std::time::Duration;

use roomraft_node::client::https_client;
use roomraft_node::config::Config;
use roomraft_node::dev::{load_or_create_ca, node_info, prepare_node, write_secret};
use roomraft_node::server::Node;
use serde_json::{json, Value};

pub struct TestNodes {
    /// Kept alive for the test's duration.
    pub _nodes: Vec<Node>,
    pub http: reqwest::Client,
    pub operator: String,
    pub port_base: u16,
    _dir: tempfile::TempDir,
}

impl TestNodes {
    pub async fn start(port_base: u16) -> Self {
        Self::start_with(port_base, |_| {}).await
    }

    /// As `start`, with each node's config changed by `tune` first.
    pub async fn start_with(port_base: u16, tune: impl Fn(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = load_or_create_ca(dir.path()).unwrap();
        let operator = "rr_test_operator".to_string();
        write_secret(&dir.path().join("operator.token"), &operator).unwrap();
        let members: BTreeMap<u64, _> = (1..=3).map(|i| (i, node_info(port_base, i))).collect();
        let mut nodes = Vec::new();
        for id in 1..=3 {
            let path =
                prepare_node(dir.path(), &ca, id, port_base, members.clone(), &operator).unwrap();
            let mut config = Config::load(&path).unwrap();
            tune(&mut config);
            nodes.push(Node::start(config).await.unwrap());
        }
        let http = https_client(&dir.path().join("ca.pem"), Duration::from_secs(30)).unwrap();
        let t = TestNodes {
            _nodes: nodes,
            http,
            operator,
            port_base,
            _dir: dir,
        };
        for i in 1..=3 {
            t.wait_ready(i).await;
        }
        t
    }

    /// The folder holding the CA, tokens, backups and every node's data.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Stops node `id` (1-based) as a clean shutdown would.
    pub async fn stop(&self, id: u64) {
        self._nodes[id as usize - 1].shutdown().await;
    }

    /// The current leader, as node 1 … 3 sees it from `via`.
    pub async fn leader(&self, via: u64) -> Option<u64> {
        let (_, v) = self.get(via, "/api/v1/cluster", &self.operator).await;
        v["leader_id"].as_u64()
    }

    /// The token `/metrics` is scraped with.
    pub fn metrics_token(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("metrics.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn url(&self, node: u64, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port_base as u64 + node)
    }

    pub async fn wait_ready(&self, node: u64) {
        wait_ready(&self.http, &self.url(node, ""), &format!("node {node}")).await
    }

    /// GET `path` on `node` with a bearer token.
    pub async fn get(&self, node: u64, path: &str, token: &str) -> (u16, Value) {
        self.send("GET", node, path, Some(token), None, None).await
    }

    /// DELETE `path` on `node` with a bearer token.
    pub async fn delete(&self, node: u64, path: &str, token: &str) -> (u16, Value) {
        self.send("DELETE", node, path, Some(token), None, None)
            .await
    }

    pub async fn send(
        &self,
        method: &str,
        node: u64,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(node, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates a tenant and returns its admin token.
    pub async fn tenant(&self, slug: &str) -> String {
        let (s, v) = self
            .send(
                "POST",
                1,
                "/api/v1/tenants",
                Some(&self.operator),
                Some(json!({"slug": slug, "name": slug})),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["admin_token"].as_str().unwrap().to_string()
    }

    /// Creates a user `username` (email `username@school.example`, password "correct horse
    /// battery") with `role` through node 1; returns the user's id.
    pub async fn user(&self, token: &str, username: &str, role: &str) -> u64 {
        let (s, v) = self
            .send(
                "POST",
                1,
                "/api/v1/users",
                Some(token),
                Some(json!({"username": username, "name": username,
                            "email": format!("{username}@school.example"), "role": role,
                            "password": "correct horse battery"})),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_u64().unwrap()
    }

    /// Sets a school day of three periods (P1 09:00, P2 10:00, P3 11:15), Monday to Friday.
    pub async fn periods(&self, token: &str) {
        let periods: Vec<Value> = (1..=5)
            .flat_map(|d| {
                [
                    ("P1", "09:00", "10:00"),
                    ("P2", "10:00", "11:00"),
                    ("P3", "11:15", "12:15"),
                ]
                .map(|(n, s, e)| json!({"weekday": d, "name": n, "start": s, "end": e}))
            })
            .collect();
        let (s, v) = self
            .send(
                "PUT",
                2,
                "/api/v1/calendar/periods",
                Some(token),
                Some(json!({ "periods": periods })),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn room(&self, token: &str, name: &str) -> u64 {
        let (s, v) = self
            .send(
                "POST",
                2,
                "/api/v1/rooms",
                Some(token),
                Some(json!({"name": name, "category": "classroom", "capacity": 30})),
                None,
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_u64().unwrap()
    }
}

pub fn slot(room: u64, from: &str, to: &str) -> Value {
    json!({"room_id": room, "start": format!("2037-03-02T{from}:00Z"), "end": format!("2037-03-02T{to}:00Z"), "title": "Maths"})
}

/// Waits, for at most 30 s, until the node at `url` answers `/health/ready` with 200.
pub async fn wait_ready(http: &reqwest::Client, url: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{url}/health/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
