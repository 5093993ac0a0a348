//! docs/openapi.yaml against the real server: every documented path is a route of the router and
//! every route is documented; a scenario on a three-node cluster calls every documented operation,
//! and every request body it sends and every answer it gets must match the documented schemas,
//! statuses and content types.

use std::collections::BTreeSet;
use std::sync::Mutex;

use jiff::civil::{Date, Weekday};
use jiff::ToSpan;
use serde_json::{json, Value};

use crate::harness::TestNodes;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The OpenAPI document, as JSON, and which of its operations the scenario called.
struct Contract {
    doc: Value,
    called: Mutex<BTreeSet<(String, String)>>,
}

fn repo_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Contract {
    fn load() -> Self {
        let yaml: serde_yaml::Value = serde_yaml::from_str(&repo_file("docs/openapi.yaml"))
            .expect("docs/openapi.yaml is YAML");
        let doc: Value = serde_json::to_value(yaml).expect("YAML that JSON can hold");
        assert!(
            doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
            "OpenAPI 3.1, whose schemas are JSON Schema 2020-12"
        );
        Contract {
            doc,
            called: Mutex::new(BTreeSet::new()),
        }
    }

    fn paths(&self) -> &serde_json::Map<String, Value> {
        self.doc["paths"].as_object().expect("paths")
    }

    /// Every (METHOD, path template) the document describes.
    fn operations(&self) -> BTreeSet<(String, String)> {
        self.paths()
            .iter()
            .flat_map(|(p, item)| {
                METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| (m.to_uppercase(), p.clone()))
            })
            .collect()
    }

    /// Follows a local `$ref` (`#/components/...`) until the object is not a reference.
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {r}"));
            v = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {r} points at nothing"));
        }
        v
    }

    /// The template a concrete path matches; literal segments beat `{param}` ones
    /// (`/bookings/export` is not `/bookings/{id}`).
    fn template(&self, method: &str, path: &str) -> String {
        let path = path.split('?').next().unwrap();
        let segs: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &String)> = None;
        for (t, item) in self.paths() {
            if item.get(method.to_lowercase()).is_none() {
                continue;
            }
            let tsegs: Vec<&str> = t.split('/').collect();
            if tsegs.len() != segs.len() {
                continue;
            }
            let mut literal = 0;
            let fits = tsegs.iter().zip(&segs).all(|(a, b)| {
                if a.starts_with('{') && a.ends_with('}') {
                    !b.is_empty()
                } else {
                    literal += 1;
                    a == b
                }
            });
            if fits && best.is_none_or(|(n, _)| literal > n) {
                best = Some((literal, t));
            }
        }
        best.map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("{method} {path} is not documented in docs/openapi.yaml"))
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        &self.paths()[template][method.to_lowercase()]
    }

    /// Validates `instance` against `schema`, whose `$ref`s point into the document's components.
    fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{what}: the documented schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{what} does not match docs/openapi.yaml:\n  {}\ninstance: {instance:#}",
            errors.join("\n  ")
        );
    }

    fn check_request(&self, method: &str, template: &str, media: &str, body: &Value) {
        let op = self.operation(method, template);
        let rb = self.resolve(&op["requestBody"]);
        let content = rb["content"]
            .get(media)
            .unwrap_or_else(|| panic!("{method} {template}: no documented {media} request body"));
        self.validate(
            &content["schema"],
            body,
            &format!("the request body of {method} {template}"),
        );
    }

    fn check_response(
        &self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
        text: &str,
    ) {
        let what = format!("{method} {template} → {status}");
        let op = self.operation(method, template);
        let response = op["responses"]
            .get(status.to_string())
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| panic!("{what}: status not documented; body {text}"));
        let media = content_type.split(';').next().unwrap_or("").trim();
        match response.get("content").and_then(Value::as_object) {
            None => assert!(
                text.is_empty(),
                "{what}: documented without a body, got {text}"
            ),
            Some(content) => {
                let c = content.get(media).unwrap_or_else(|| {
                    panic!("{what}: content type {media:?} not documented; body {text}")
                });
                let body = if media == "application/json" {
                    serde_json::from_str(text)
                        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
                } else {
                    Value::String(text.to_string())
                };
                self.validate(&c["schema"], &body, &what);
            }
        }
    }
}

/// Who calls.
#[derive(Clone, Copy)]
enum Who<'a> {
    Nobody,
    Bearer(&'a str),
    Session { cookie: &'a str, csrf: &'a str },
}

enum Body {
    Empty,
    Json(Value),
    /// JSON the server must refuse; not checked against the request schema, which may refuse it too.
    Bad(Value),
    Csv(String),
}

struct Client<'a> {
    t: &'a TestNodes,
    c: &'a Contract,
    /// Requests go round the three nodes.
    next: std::cell::Cell<u64>,
}

/// An answer: status, headers and JSON (or the text as a JSON string).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Client<'_> {
    async fn call(&self, method: &str, path: &str, who: Who<'_>, body: Body) -> Answer {
        let template = self.c.template(method, path);
        let node = self.next.get() % 3 + 1;
        self.next.set(self.next.get() + 1);
        let mut req = self
            .t
            .http
            .request(method.parse().unwrap(), self.t.url(node, path));
        match who {
            Who::Nobody => {}
            Who::Bearer(tok) => req = req.bearer_auth(tok),
            Who::Session { cookie, csrf } => {
                req = req
                    .header("cookie", format!("rr_session={cookie}"))
                    .header("x-csrf-token", csrf)
            }
        }
        match body {
            Body::Empty => {}
            Body::Json(v) => {
                self.c
                    .check_request(method, &template, "application/json", &v);
                req = req.json(&v);
            }
            Body::Bad(v) => req = req.json(&v),
            Body::Csv(text) => {
                self.c
                    .check_request(method, &template, "text/csv", &json!(text));
                req = req.header("content-type", "text/csv").body(text);
            }
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap();
        self.c
            .check_response(method, &template, status, &content_type, &text);
        self.c
            .called
            .lock()
            .unwrap()
            .insert((method.to_string(), template));
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Calls and insists on `status`; returns the body.
    async fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        who: Who<'_>,
        body: Body,
    ) -> Value {
        let a = self.call(method, path, who, body).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.body);
        a.body
    }
}

fn id(v: &Value) -> u64 {
    v["id"].as_u64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// The router's paths, read from its source: what the server really routes.
fn router_paths() -> BTreeSet<String> {
    let src = repo_file("node/src/api/mod.rs");
    let router = &src[src.find("pub fn routes(").expect("routes() in api/mod.rs")..];
    router
        .split(".route(")
        .skip(1)
        .map(|chunk| {
            let start = chunk.find('"').expect("a route path") + 1;
            let len = chunk[start..].find('"').expect("closing quote");
            chunk[start..start + len].to_string()
        })
        .collect()
}

#[test]
fn every_route_is_documented_and_every_documented_path_is_routed() {
    let c = Contract::load();
    let documented: BTreeSet<String> = c.paths().keys().cloned().collect();
    let routed = router_paths();
    assert!(routed.len() > 40, "the router parse found {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented paths the server does not route: {unrouted:?}"
    );
    // Each `{param}` of a path is declared as a path parameter of each of its operations.
    for (template, item) in c.paths() {
        let wanted: BTreeSet<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for m in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let declared: BTreeSet<&str> = item["parameters"]
                .as_array()
                .into_iter()
                .chain(item[*m]["parameters"].as_array())
                .flatten()
                .map(|p| c.resolve(p))
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(declared, wanted, "{m} {template}: path parameters");
            let responses = item[*m]["responses"].as_object();
            assert!(
                responses.is_some_and(|r| !r.is_empty()),
                "{m} {template}: no responses"
            );
        }
    }
}

/// The answers any route can give whatever its handler does (docs/api.md, "Errors"): 429 from
/// the per-address limit (all but health and metrics), 400/408/413/422 for a body (malformed,
/// too slow, too large, invalid), 400/422 for a bad query string or parameter, 400 for a bad
/// header parameter (an Idempotency-Key), 404 for an unknown id, 403 on a
/// change (another site's, or a missing CSRF token), 401/403 where credentials are needed, and
/// 503 wherever the cluster is asked (no leader). Each operation must document them all, so a
/// schema-driven fuzzer finds no undocumented status.
#[test]
fn every_operation_documents_the_answers_every_route_can_give() {
    let c = Contract::load();
    let mut missing = Vec::new();
    for (path, item) in c.paths() {
        for m in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = &item[*m];
            let quiet = path.starts_with("/health/") || path == "/metrics";
            let anonymous = op["security"] == json!([]);
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| c.resolve(p))
                .collect();
            let mut want: BTreeSet<&str> = BTreeSet::new();
            if !quiet {
                want.insert("429");
            }
            if op.get("requestBody").is_some() {
                want.extend(["400", "408", "413", "422"]);
            }
            if params.iter().any(|p| p["in"] == "query") {
                want.extend(["400", "422"]);
            }
            if params.iter().any(|p| p["in"] == "header") {
                want.insert("400");
            }
            if path.contains('{') {
                want.insert("404");
            }
            if *m != "get" {
                want.insert("403");
            }
            if !anonymous && !quiet && path != "/api/v1/cluster" {
                want.extend(["401", "403"]);
            }
            let local = quiet || path == "/api/v1/cluster" || path.ends_with("/pageviews");
            if !local {
                want.insert("503");
            }
            let have: BTreeSet<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for code in want.difference(&have) {
                missing.push(format!("{} {path}: {code}", m.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented answers:\n{}",
        missing.join("\n")
    );
}

/// The first `weekday` on or after `d`.
fn on_or_after(d: Date, weekday: Weekday) -> Date {
    let mut d = d;
    while d.weekday() != weekday {
        d = d.tomorrow().unwrap();
    }
    d
}

#[tokio::test]
async fn openapi_matches_the_server() {
    let t = TestNodes::start(22080).await;
    let c = Contract::load();
    let api = Client {
        t: &t,
        c: &c,
        next: std::cell::Cell::new(0),
    };
    use Body::{Bad, Csv, Empty, Json};
    let op = Who::Bearer(&t.operator);

    // Dates in next year's spring term, so bookings are in the future whenever this runs.
    let y = jiff::Zoned::now().year() + 1;
    let term_start = on_or_after(jiff::civil::date(y, 1, 4), Weekday::Monday);
    let term_end = jiff::civil::date(y, 3, 26);
    let monday = on_or_after(jiff::civil::date(y, 3, 1), Weekday::Monday);
    let tuesday = monday.tomorrow().unwrap();
    let half_term = on_or_after(jiff::civil::date(y, 2, 14), Weekday::Monday);

    // Health and cluster.
    api.expect(200, "GET", "/health/live", Who::Nobody, Empty)
        .await;
    api.expect(200, "GET", "/health/ready", Who::Nobody, Empty)
        .await;
    let status = api
        .expect(200, "GET", "/api/v1/cluster", Who::Nobody, Empty)
        .await;
    assert!(status.get("members").is_none(), "anonymous: {status}");
    let status = api.expect(200, "GET", "/api/v1/cluster", op, Empty).await;
    assert_eq!(status["members"].as_array().unwrap().len(), 3);
    let mut quotas = api
        .expect(200, "GET", "/api/v1/cluster/quotas", op, Empty)
        .await;
    quotas["rooms"] = json!(50);
    let set = api
        .expect(
            200,
            "PUT",
            "/api/v1/cluster/quotas",
            op,
            Json(quotas.clone()),
        )
        .await;
    assert_eq!(set, quotas);
    quotas["rooms"] = json!(0);
    let e = api
        .expect(422, "PUT", "/api/v1/cluster/quotas", op, Bad(quotas))
        .await;
    assert_eq!(e["field"], "rooms");
    api.expect(200, "GET", "/api/v1/cluster/state", op, Empty)
        .await;
    api.expect(200, "GET", "/metrics", op, Empty).await;
    api.expect(401, "GET", "/metrics", Who::Nobody, Empty).await;
    api.expect(401, "GET", "/api/v1/cluster/state", Who::Nobody, Empty)
        .await;
    let manifest = api
        .expect(201, "POST", "/api/v1/cluster/backups", op, Empty)
        .await;
    let listed = api
        .expect(200, "GET", "/api/v1/cluster/backups", op, Empty)
        .await;
    assert_eq!(listed["backups"][0]["manifest"], manifest);
    api.expect(401, "POST", "/api/v1/cluster/backups", Who::Nobody, Empty)
        .await;
    let bad_learner = json!({"id": 9, "peer_addr": "nowhere", "client_addr": "127.0.0.1:1"});
    let e = api
        .expect(
            422,
            "POST",
            "/api/v1/cluster/learners",
            op,
            Json(bad_learner),
        )
        .await;
    assert_eq!(e["field"], "peer_addr");
    api.expect(
        422,
        "POST",
        "/api/v1/cluster/voters",
        op,
        Bad(json!({"ids": []})),
    )
    .await;
    api.expect(404, "DELETE", "/api/v1/cluster/members/99", op, Empty)
        .await;

    // Tenants.
    let oak = api
        .expect(
            201,
            "POST",
            "/api/v1/tenants",
            op,
            Json(json!({"slug": "oak", "name": "Oak School"})),
        )
        .await;
    let admin_token = oak["admin_token"].as_str().unwrap().to_string();
    let admin = Who::Bearer(&admin_token);
    let elm = api
        .expect(
            201,
            "POST",
            "/api/v1/tenants",
            op,
            Json(json!({"slug": "elm", "name": "Elm", "time_zone": "Europe/Dublin"})),
        )
        .await;
    api.expect(
        409,
        "POST",
        "/api/v1/tenants",
        op,
        Json(json!({"slug": "oak", "name": "again"})),
    )
    .await;
    api.expect(200, "GET", "/api/v1/tenants", op, Empty).await;
    let suspended = api
        .expect(
            200,
            "PATCH",
            &format!("/api/v1/tenants/{}", id(&elm)),
            op,
            Json(json!({"suspended": true})),
        )
        .await;
    assert_eq!(suspended["suspended"], true);

    // People.
    let science = api
        .expect(
            201,
            "POST",
            "/api/v1/departments",
            admin,
            Json(json!({"name": "Science"})),
        )
        .await;
    let drama = api
        .expect(
            201,
            "POST",
            "/api/v1/departments",
            admin,
            Json(json!({"name": "Drama"})),
        )
        .await;
    api.expect(200, "GET", "/api/v1/departments", admin, Empty)
        .await;
    api.expect(
        204,
        "DELETE",
        &format!("/api/v1/departments/{}", id(&drama)),
        admin,
        Empty,
    )
    .await;
    let ann = api
        .expect(
            201,
            "POST",
            "/api/v1/users",
            admin,
            Json(json!({
            "username": "ann", "name": "Ann Teacher", "email": "ann@oak.example",
            "department_id": id(&science), "role": "staff", "password": "first password 1"})),
        )
        .await;
    let ann_path = format!("/api/v1/users/{}", id(&ann));
    let e = api
        .expect(
            422,
            "POST",
            "/api/v1/users",
            admin,
            Bad(json!({
            "username": "bob", "name": "Bob", "email": "bob@oak.example", "role": "staff",
            "password": "short"})),
        )
        .await;
    assert_eq!(e["field"], "password");
    api.expect(200, "GET", "/api/v1/users", admin, Empty).await;
    api.expect(200, "GET", &ann_path, admin, Empty).await;
    api.expect(404, "GET", "/api/v1/users/4242", admin, Empty)
        .await;
    api.expect(
        200,
        "PATCH",
        &ann_path,
        admin,
        Json(json!({"name": "Ann Smith"})),
    )
    .await;
    api.expect(
        200,
        "POST",
        &format!("{ann_path}/password"),
        admin,
        Json(json!({"new_password": "second password 2"})),
    )
    .await;
    let creds =
        json!({"tenant": "oak", "login": "ANN@oak.example", "password": "second password 2"});
    let wrong = json!({"tenant": "oak", "login": "ann", "password": "not her password"});
    let e = api
        .expect(401, "POST", "/api/v1/session", Who::Nobody, Json(wrong))
        .await;
    assert_eq!(e["code"], "bad_credentials");
    let a = api
        .call("POST", "/api/v1/session", Who::Nobody, Json(creds))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let set_cookie = a.headers["set-cookie"].to_str().unwrap().to_string();
    let cookie = set_cookie
        .strip_prefix("rr_session=")
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string();
    let csrf = a.body["csrf_token"].as_str().unwrap().to_string();
    let ann_s = Who::Session {
        cookie: &cookie,
        csrf: &csrf,
    };
    let me = api
        .expect(200, "GET", "/api/v1/session", ann_s, Empty)
        .await;
    assert_eq!(me["via"], "session");
    api.expect(
        200,
        "POST",
        "/api/v1/session/password",
        ann_s,
        Json(json!({
        "current_password": "second password 2", "new_password": "third password 3"})),
    )
    .await;
    let tok = api
        .expect(
            201,
            "POST",
            "/api/v1/tokens",
            admin,
            Json(json!({"name": "MIS sync", "role": "staff"})),
        )
        .await;
    let integration_token = tok["token"].as_str().unwrap().to_string();
    let integration = Who::Bearer(&integration_token);
    let me = api
        .expect(200, "GET", "/api/v1/session", integration, Empty)
        .await;
    assert_eq!(me["via"], "token");
    api.expect(200, "GET", "/api/v1/tokens", admin, Empty).await;
    api.expect(403, "GET", "/api/v1/tokens", integration, Empty)
        .await;

    // Rules, rooms, the calendar.
    api.expect(
        200,
        "PUT",
        "/api/v1/rules",
        admin,
        Json(json!({
        "max_length_minutes": 480, "max_active_per_user": {"staff": 50}})),
    )
    .await;
    let rules = api.expect(200, "GET", "/api/v1/rules", admin, Empty).await;
    assert_eq!(rules["max_length_minutes"], 480);
    let lab = api
        .expect(
            201,
            "POST",
            "/api/v1/rooms",
            admin,
            Json(json!({
            "name": "Lab", "category": "classroom", "capacity": 30, "location": "Science block"})),
        )
        .await;
    let hall = api
        .expect(
            201,
            "POST",
            "/api/v1/rooms",
            admin,
            Json(json!({
            "name": "Hall", "category": "hall", "capacity": 200, "approval_required": true,
            "rules": {"max_length_minutes": 240}})),
        )
        .await;
    let e = api
        .expect(
            422,
            "POST",
            "/api/v1/rooms",
            admin,
            Json(json!({"name": "", "category": "hall", "capacity": 1})),
        )
        .await;
    assert_eq!(e["field"], "name");
    let lab_path = format!("/api/v1/rooms/{}", id(&lab));
    api.expect(200, "GET", "/api/v1/rooms", integration, Empty)
        .await;
    api.expect(200, "GET", &lab_path, integration, Empty).await;
    api.expect(
        200,
        "PATCH",
        &lab_path,
        admin,
        Json(json!({"description": "Benches and fume cupboards"})),
    )
    .await;
    api.expect(
        200,
        "PUT",
        "/api/v1/calendar/week-cycle",
        admin,
        Json(json!({"labels": ["A", "B"]})),
    )
    .await;
    let cal = api
        .expect(201, "POST", "/api/v1/calendar/years", admin, Json(json!({
            "name": format!("{}/{}", y - 1, y % 100), "start": format!("{}-09-01", y - 1), "end": format!("{y}-08-31")})))
        .await;
    let year = id(&cal["years"][0]);
    api.expect(201, "POST", "/api/v1/calendar/terms", admin, Json(json!({
        "year_id": year, "name": "Spring", "start": term_start.to_string(), "end": term_end.to_string(), "first_week": "A"})))
        .await;
    api.expect(201, "POST", "/api/v1/calendar/closures", admin, Json(json!({
        "name": "Half term", "start": half_term.to_string(), "end": (half_term + 4.days()).to_string()})))
        .await;
    let cal = api
        .expect(
            201,
            "POST",
            "/api/v1/calendar/closures",
            admin,
            Json(json!({
            "name": "Snow day", "kind": "closure", "start": (monday + 14.days()).to_string()})),
        )
        .await;
    let snow = cal["closures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Snow day")
        .map(id)
        .unwrap();
    api.expect(
        200,
        "DELETE",
        &format!("/api/v1/calendar/items/{snow}"),
        admin,
        Empty,
    )
    .await;
    let periods: Vec<Value> = (1..=5)
        .flat_map(|d| {
            [
                ("P1", "09:00", "10:00", "lesson"),
                ("Break", "10:00", "10:20", "break"),
                ("P2", "10:20", "11:20", "lesson"),
                ("P3", "11:20", "12:20", "lesson"),
            ]
            .map(|(n, s, e, k)| json!({"weekday": d, "name": n, "start": s, "end": e, "kind": k}))
        })
        .collect();
    api.expect(
        200,
        "PUT",
        "/api/v1/calendar/periods",
        admin,
        Json(json!({ "periods": periods })),
    )
    .await;
    api.expect(200, "GET", "/api/v1/calendar", integration, Empty)
        .await;
    let weeks = api
        .expect(
            200,
            "GET",
            &format!("/api/v1/calendar/weeks?from={term_start}&to={term_end}"),
            integration,
            Empty,
        )
        .await;
    assert_eq!(weeks[0]["week"], "A");

    // The timetable.
    let lesson = api
        .expect(
            201,
            "POST",
            "/api/v1/lessons",
            admin,
            Json(json!({
            "room_id": id(&lab), "weekday": "Mon", "period": "P1", "subject": "Chemistry",
            "class_name": "10C", "teacher": "Ann Smith"})),
        )
        .await;
    let csv = "room,day,period,subject,class,teacher,week\nLab,Tue,P2,Physics,11P,Ann Smith,\nHall,Wed,P3,Drama,9D,Mr Reed,B\n";
    let imported = api
        .expect(
            200,
            "POST",
            "/api/v1/lessons/import",
            admin,
            Csv(csv.into()),
        )
        .await;
    assert_eq!(imported["imported"], 2);
    let e = api
        .expect(
            422,
            "POST",
            "/api/v1/lessons/import",
            admin,
            Csv("room,day,period,subject\nNowhere,Funday,P9,Art\n".into()),
        )
        .await;
    assert_eq!(e["code"], "invalid_rows");
    let lessons = api
        .expect(
            200,
            "GET",
            &format!("/api/v1/lessons?room_id={}", id(&lab)),
            integration,
            Empty,
        )
        .await;
    let physics = lessons
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["subject"] == "Physics")
        .map(id)
        .unwrap();
    let release = format!("/api/v1/lessons/{physics}/releases/{tuesday}");
    let released = api.expect(200, "PUT", &release, integration, Empty).await;
    assert_eq!(released["released"], json!([tuesday.to_string()]));
    api.expect(200, "DELETE", &release, integration, Empty)
        .await;
    api.expect(
        204,
        "DELETE",
        &format!("/api/v1/lessons/{}", id(&lesson)),
        admin,
        Empty,
    )
    .await;

    // Bookings and views.
    let booking = api
        .expect(
            201,
            "POST",
            "/api/v1/bookings",
            integration,
            Json(json!({
            "room_id": id(&lab), "date": monday.to_string(), "period": "P2", "title": "Revision"})),
        )
        .await;
    let e = api
        .expect(409, "POST", "/api/v1/bookings", admin, Json(json!({
            "room_id": id(&lab), "date": monday.to_string(), "start_time": "10:30", "end_time": "11:00",
            "title": "Clash", "on_behalf_of": id(&ann)})))
        .await;
    assert_eq!(e["conflicts_with"]["booking_id"], id(&booking));
    let e = api
        .expect(409, "POST", "/api/v1/bookings", integration, Json(json!({
            "room_id": id(&lab), "date": tuesday.to_string(), "period": "P2", "title": "Over a lesson"})))
        .await;
    assert_eq!(e["conflicts_with"]["kind"], "lesson");
    let e = api
        .expect(422, "POST", "/api/v1/bookings", integration, Json(json!({
            "room_id": id(&lab), "start": format!("{monday}T15:00:00Z"), "end": format!("{monday}T14:00:00Z"), "title": "Backwards"})))
        .await;
    assert_eq!(e["code"], "invalid");
    let booking_path = format!("/api/v1/bookings/{}", id(&booking));
    api.expect(200, "GET", &booking_path, integration, Empty)
        .await;
    api.expect(
        200,
        "GET",
        &format!("{lab_path}/bookings?from={monday}T00:00:00Z&to={tuesday}T00:00:00Z"),
        integration,
        Empty,
    )
    .await;
    let day = api
        .expect(
            200,
            "GET",
            &format!("{lab_path}/day?date={monday}"),
            integration,
            Empty,
        )
        .await;
    assert_eq!(day["days"][0]["occupations"].as_array().unwrap().len(), 1);
    api.expect(
        200,
        "GET",
        &format!("{lab_path}/week?date={tuesday}"),
        integration,
        Empty,
    )
    .await;
    let grid = api
        .expect(
            200,
            "GET",
            &format!("/api/v1/day?date={tuesday}&min_capacity=10"),
            integration,
            Empty,
        )
        .await;
    assert_eq!(grid["rooms"].as_array().unwrap().len(), 2);
    let free = api
        .expect(
            200,
            "GET",
            &format!("/api/v1/free-rooms?date={monday}&period=P2"),
            integration,
            Empty,
        )
        .await;
    assert_eq!(
        free["rooms"].as_array().unwrap().len(),
        1,
        "only the hall: {free}"
    );
    api.expect(
        422,
        "GET",
        &format!("/api/v1/free-rooms?date={monday}&period=P7"),
        integration,
        Empty,
    )
    .await;

    // Approval: Ann's hall booking is pending until an admin decides.
    let pending = api
        .expect(201, "POST", "/api/v1/bookings", ann_s, Json(json!({
            "room_id": id(&hall), "date": monday.to_string(), "period": "P1", "title": "Assembly rehearsal",
            "notes": "Chairs out"})))
        .await;
    assert_eq!(pending["status"], "pending");
    let queue = api
        .expect(200, "GET", "/api/v1/approvals", admin, Empty)
        .await;
    assert_eq!(queue.as_array().unwrap().len(), 1);
    let decided = api
        .expect(
            200,
            "POST",
            &format!("/api/v1/bookings/{}/decision", id(&pending)),
            admin,
            Json(json!({"approve": true})),
        )
        .await;
    assert_eq!(decided["status"], "active");
    api.expect(
        409,
        "POST",
        &format!("/api/v1/bookings/{}/decision", id(&pending)),
        admin,
        Json(json!({"approve": false})),
    )
    .await;
    let mine = api
        .expect(200, "GET", "/api/v1/me/bookings", ann_s, Empty)
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 1);

    // A weekly series, with a preview that shows its clash.
    let series = json!({"room_id": id(&lab), "first_date": monday.to_string(), "until": (monday + 20.days()).to_string(),
                        "weekdays": ["Mon", 3], "period": "P2", "title": "Science club",
                        "mode": "skip_conflicts"});
    let preview = api
        .expect(
            200,
            "POST",
            "/api/v1/series/preview",
            integration,
            Json(series.clone()),
        )
        .await;
    assert_eq!(preview["count"], 6);
    assert_eq!(preview["conflicts"], 1);
    let mut strict = series.clone();
    strict["mode"] = json!("all_or_nothing");
    let e = api
        .expect(409, "POST", "/api/v1/series", integration, Json(strict))
        .await;
    assert_eq!(e["code"], "series_conflicts");
    let created = api
        .expect(201, "POST", "/api/v1/series", integration, Json(series))
        .await;
    assert_eq!(created["occurrence_ids"].as_array().unwrap().len(), 5);
    let second = created["occurrence_ids"][1].as_u64().unwrap();
    let cancelled = api
        .expect(
            200,
            "DELETE",
            &format!("/api/v1/bookings/{second}?scope=following"),
            integration,
            Empty,
        )
        .await;
    assert_eq!(cancelled["cancelled"].as_array().unwrap().len(), 4);
    api.expect(
        409,
        "DELETE",
        &format!("/api/v1/bookings/{second}"),
        integration,
        Empty,
    )
    .await;
    api.expect(
        200,
        "GET",
        &format!("/api/v1/series/{}", id(&created)),
        integration,
        Empty,
    )
    .await;
    let export = api
        .expect(
            200,
            "GET",
            &format!(
                "/api/v1/bookings/export?from={monday}&to={}",
                monday + 30.days()
            ),
            integration,
            Empty,
        )
        .await;
    assert!(export.as_str().unwrap().starts_with("id,room,start,end"));

    // History and feeds.
    let audit = api
        .expect(
            200,
            "GET",
            &format!("/api/v1/audit?object=booking&object_id={}", id(&pending)),
            admin,
            Empty,
        )
        .await;
    assert_eq!(
        audit.as_array().unwrap().len(),
        2,
        "created and approved: {audit}"
    );
    let audit_csv = api
        .expect(
            200,
            "GET",
            &format!("/api/v1/audit?user_id={}&format=csv", id(&ann)),
            admin,
            Empty,
        )
        .await;
    assert!(audit_csv.as_str().unwrap().lines().count() > 1);
    api.expect(403, "GET", "/api/v1/audit", integration, Empty)
        .await;
    let room_feed = api
        .expect(
            201,
            "POST",
            "/api/v1/feeds",
            admin,
            Json(json!({"room_id": id(&lab)})),
        )
        .await;
    api.expect(201, "POST", "/api/v1/feeds", ann_s, Json(json!({})))
        .await;
    let feeds = api.expect(200, "GET", "/api/v1/feeds", ann_s, Empty).await;
    assert_eq!(feeds.as_array().unwrap().len(), 1, "Ann sees her own feed");
    let url = room_feed["url"].as_str().unwrap().to_string();
    let ics = api.expect(200, "GET", &url, Who::Nobody, Empty).await;
    assert!(ics.as_str().unwrap().contains("BEGIN:VTIMEZONE"));
    api.expect(
        200,
        "DELETE",
        &format!("/api/v1/feeds/{}", id(&room_feed)),
        admin,
        Empty,
    )
    .await;
    api.expect(404, "GET", &url, Who::Nobody, Empty).await;

    // Analytics: a public page reports a view; the admin reads the report.
    let v = api
        .expect(
            202,
            "POST",
            "/api/v1/sites/oak/pageviews",
            Who::Nobody,
            Json(
                json!({"path": "/v/oak?utm_source=leaflet", "referrer": "https://www.google.com/"}),
            ),
        )
        .await;
    // Not counted until the site is published, and answered as for no school at all.
    assert_eq!(v["recorded"], false);
    let v = api
        .expect(
            202,
            "POST",
            "/api/v1/sites/nowhere/pageviews",
            Who::Nobody,
            Json(json!({"path": "/"})),
        )
        .await;
    assert_eq!(v["recorded"], false);
    let e = api
        .expect(
            422,
            "POST",
            "/api/v1/sites/oak/pageviews",
            Who::Nobody,
            Bad(json!({"path": ""})),
        )
        .await;
    assert_eq!(e["field"], "path");
    let report = api
        .expect(200, "GET", "/api/v1/analytics?limit=5", admin, Empty)
        .await;
    assert_eq!(report["time_zone"], "Europe/London");
    api.expect(403, "GET", "/api/v1/analytics", op, Empty).await;
    let e = api
        .expect(422, "GET", "/api/v1/analytics?to=someday", admin, Empty)
        .await;
    assert_eq!(e["field"], "to");

    // The public website and its enquiries.
    let site = api
        .expect(
            200,
            "PUT",
            "/api/v1/site",
            admin,
            Json(json!({"published": true, "description": "Our halls.",
                        "hire_room_ids": [id(&lab)]})),
        )
        .await;
    assert_eq!(site["url_path"], "/v/oak");
    let e = api
        .expect(
            404,
            "PUT",
            "/api/v1/site",
            admin,
            Json(json!({"published": true, "hire_room_ids": [1]})),
        )
        .await;
    assert_eq!(e["code"], "not_found");
    let site = api.expect(200, "GET", "/api/v1/site", admin, Empty).await;
    assert_eq!(site["hire_room_ids"], json!([id(&lab)]));
    let list = api
        .expect(200, "GET", "/api/v1/enquiries?all=true", admin, Empty)
        .await;
    assert_eq!(list, json!([]));
    api.expect(403, "GET", "/api/v1/enquiries", op, Empty).await;

    // Endings: a revoked token, a signed-out session, a forced sign-out.
    api.expect(
        200,
        "DELETE",
        &format!("/api/v1/tokens/{}", id(&tok)),
        admin,
        Empty,
    )
    .await;
    api.expect(204, "DELETE", "/api/v1/session", ann_s, Empty)
        .await;
    api.expect(401, "GET", "/api/v1/session", ann_s, Empty)
        .await;
    api.expect(204, "POST", &format!("{ann_path}/sign-out"), admin, Empty)
        .await;

    let called = c.called.lock().unwrap().clone();
    let missed: Vec<_> = c.operations().difference(&called).cloned().collect();
    assert!(
        missed.is_empty(),
        "documented operations the scenario never called: {missed:?}"
    );
}
