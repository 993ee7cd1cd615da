//! The built-in pod's httpbin-compatible app: `/get`, `/headers`, `/ip`,
//! `/anything`, `/status/{codes}`, `/delay/{s}` and `/bytes/{n}`, answered in
//! the shapes httpbin uses.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use super::capacity::Builtin;

pub(super) type PodBody = Full<Bytes>;

pub(super) fn text(status: StatusCode, body: &'static str) -> Response<PodBody> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(value: &serde_json::Value) -> Response<PodBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

const MAX_BODY: usize = 1 << 20;
const MAX_BYTES: usize = 100 * 1024;
const MAX_DELAY_S: f64 = 10.0;

/// Request data in the shape httpbin reports it.
struct Echo {
    method: String,
    args: serde_json::Value,
    headers: serde_json::Value,
    origin: String,
    url: String,
}

fn echo(req_parts: &hyper::http::request::Parts, peer: SocketAddr) -> Echo {
    let headers = &req_parts.headers;
    let mut hmap = serde_json::Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        hmap.insert(title_case(name.as_str()), joined.into());
    }
    // httpbin reports X-Forwarded-For when present (it runs behind proxies).
    let origin = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| peer.ip().to_string());
    let host = req_parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let pq = req_parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    Echo {
        method: req_parts.method.as_str().to_owned(),
        args: query_args(req_parts.uri.query().unwrap_or("")),
        headers: hmap.into(),
        origin,
        url: format!("http://{host}{pq}"),
    }
}

/// Query/form string → httpbin's map (repeated keys become arrays).
fn query_args(q: &str) -> serde_json::Value {
    let mut out: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        match out.get_mut(&k) {
            Some(serde_json::Value::Array(a)) => a.push(v.into()),
            Some(prev) => {
                let first = prev.take();
                *prev = serde_json::Value::Array(vec![first, v.into()]);
            }
            None => {
                out.insert(k, v.into());
            }
        }
    }
    out.into()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

pub(super) async fn httpbin(
    st: &Builtin,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<PodBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let get_like = method == Method::GET || method == Method::HEAD;
    let seg: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    let (head, rest) = (seg[0], seg.get(1).copied());

    match (head, rest) {
        ("get", None) | ("headers", None) | ("ip", None) if !get_like => {
            text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        }
        ("get", None) => {
            let e = echo(&parts, peer);
            json(&serde_json::json!({
                "args": e.args, "headers": e.headers, "origin": e.origin, "url": e.url,
            }))
        }
        ("headers", None) => json(&serde_json::json!({ "headers": echo(&parts, peer).headers })),
        ("ip", None) => json(&serde_json::json!({ "origin": echo(&parts, peer).origin })),
        ("anything", _) => {
            let e = echo(&parts, peer);
            let Some(b) = read_body(body).await else {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
            };
            let (data, form, jsonv) = body_views(&parts.headers, &b);
            json(&serde_json::json!({
                "args": e.args, "data": data, "files": {}, "form": form,
                "headers": e.headers, "json": jsonv, "method": e.method,
                "origin": e.origin, "url": e.url,
            }))
        }
        ("status", Some(codes)) => match pick_status(st, codes) {
            Some(code) => {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = code;
                r
            }
            None => text(StatusCode::BAD_REQUEST, "Invalid status code"),
        },
        ("delay", Some(s)) => {
            let Ok(secs) = s.parse::<f64>() else {
                return text(StatusCode::BAD_REQUEST, "Invalid delay");
            };
            if !secs.is_finite() {
                return text(StatusCode::BAD_REQUEST, "Invalid delay");
            }
            let secs = secs.clamp(0.0, MAX_DELAY_S);
            let e = echo(&parts, peer);
            let Some(b) = read_body(body).await else {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
            };
            // try_: a tiny time scale must not overflow into a panic.
            let real = Duration::try_from_secs_f64(secs / st.time_scale)
                .unwrap_or(Duration::from_secs(MAX_DELAY_S as u64));
            tokio::time::sleep(real).await;
            let (data, form, _) = body_views(&parts.headers, &b);
            json(&serde_json::json!({
                "args": e.args, "data": data, "files": {}, "form": form,
                "headers": e.headers, "origin": e.origin, "url": e.url,
            }))
        }
        ("bytes", Some(n)) => {
            let Ok(n) = n.parse::<usize>() else {
                return text(StatusCode::BAD_REQUEST, "Invalid length");
            };
            let n = n.min(MAX_BYTES);
            let mut buf = Vec::with_capacity(n + 8);
            while buf.len() < n {
                buf.extend_from_slice(&st.next_random().to_le_bytes());
            }
            buf.truncate(n);
            let mut r = Response::new(Full::new(Bytes::from(buf)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn read_body(body: Incoming) -> Option<Bytes> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}

/// httpbin's `data`, `form` and `json` fields for a request body.
fn body_views(headers: &HeaderMap, body: &[u8]) -> (String, serde_json::Value, serde_json::Value) {
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/x-www-form-urlencoded") {
        let form = query_args(&String::from_utf8_lossy(body));
        return (String::new(), form, serde_json::Value::Null);
    }
    let jsonv = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    (
        String::from_utf8_lossy(body).into_owned(),
        serde_json::json!({}),
        jsonv,
    )
}

/// `/status/{codes}`: one code, or httpbin's weighted list `200:3,500:1`.
fn pick_status(st: &Builtin, codes: &str) -> Option<StatusCode> {
    let mut choices: Vec<(StatusCode, f64)> = Vec::new();
    for item in codes.split(',') {
        let (code, weight) = match item.split_once(':') {
            Some((c, w)) => (c, w.trim().parse::<f64>().ok()?),
            None => (item, 1.0),
        };
        let code: u16 = code.trim().parse().ok()?;
        // 1xx are not final responses; hyper cannot send them as one.
        if !(200..=599).contains(&code) || !weight.is_finite() || weight < 0.0 {
            return None;
        }
        choices.push((StatusCode::from_u16(code).ok()?, weight));
    }
    if choices.len() == 1 {
        return Some(choices[0].0);
    }
    let total: f64 = choices.iter().map(|c| c.1).sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = (st.next_random() >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (code, w) in &choices {
        if x < *w {
            return Some(*code);
        }
        x -= w;
    }
    choices.last().map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::super::http::{http_get, http_request};
    use super::super::tests::{builtin, T};
    use super::*;

    fn parse(b: &Bytes) -> serde_json::Value {
        serde_json::from_slice(b).unwrap()
    }

    #[tokio::test]
    async fn httpbin_shapes() {
        let pod = builtin(4, 0).await;
        let a = pod.addr();
        assert!(pod.probe("/healthz").await);
        assert!(pod.probe("/health").await);

        let (s, h, b) = http_get(a, "/get?x=1&x=2&y=a%20b", Some("h.test"), T)
            .await
            .unwrap();
        assert_eq!(s, 200);
        assert_eq!(h["x-pod"], "httpbin-abc");
        let v = parse(&b);
        assert_eq!(v["args"]["x"], serde_json::json!(["1", "2"]));
        assert_eq!(v["args"]["y"], "a b");
        assert_eq!(v["headers"]["Host"], "h.test");
        assert_eq!(v["origin"], "127.0.0.1");
        assert_eq!(v["url"], "http://h.test/get?x=1&x=2&y=a%20b");

        let (s, _, b) = http_request(
            a,
            Method::POST,
            "/anything/foo?q=1",
            None,
            Bytes::from_static(br#"{"k":[1,2]}"#),
            T,
        )
        .await
        .unwrap();
        assert_eq!(s, 200);
        let v = parse(&b);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["json"]["k"], serde_json::json!([1, 2]));
        assert_eq!(v["data"], r#"{"k":[1,2]}"#);
        assert_eq!(v["args"]["q"], "1");

        for (path, code) in [
            ("/status/418", 418),
            ("/status/503", 503),
            ("/status/204", 204),
        ] {
            assert_eq!(http_get(a, path, None, T).await.unwrap().0, code, "{path}");
        }
        assert_eq!(
            http_get(a, "/status/200,201", None, T)
                .await
                .unwrap()
                .0
                .as_u16()
                / 100,
            2
        );
        assert_eq!(http_get(a, "/status/abc", None, T).await.unwrap().0, 400);
        assert_eq!(http_get(a, "/nope", None, T).await.unwrap().0, 404);
        assert_eq!(
            http_request(a, Method::POST, "/get", None, Bytes::new(), T)
                .await
                .unwrap()
                .0,
            405
        );

        let (_, _, b) = http_get(a, "/bytes/1000", None, T).await.unwrap();
        assert_eq!(b.len(), 1000);
        let (_, _, b) = http_get(a, "/bytes/10000000", None, T).await.unwrap();
        assert_eq!(b.len(), MAX_BYTES);

        assert_eq!(
            parse(&http_get(a, "/ip", None, T).await.unwrap().2)["origin"],
            "127.0.0.1"
        );
        let v = parse(&http_get(a, "/headers", None, T).await.unwrap().2);
        assert!(v["headers"].is_object());

        // /delay/1 at time scale 10 sleeps ~100 ms.
        let t0 = std::time::Instant::now();
        let (s, _, b) = http_get(a, "/delay/1", None, T).await.unwrap();
        let el = t0.elapsed();
        assert_eq!(s, 200);
        assert!(parse(&b)["url"].as_str().unwrap().ends_with("/delay/1"));
        assert!(
            el >= Duration::from_millis(95) && el < Duration::from_millis(1000),
            "{el:?}"
        );

        let st = pod.stats();
        assert!(st.requests_known);
        // 2 health probes are not counted; everything else is.
        assert_eq!(st.requests_total, 14);
        assert_eq!(st.responses_4xx, 4);
        assert_eq!(st.responses_5xx, 1);
        assert_eq!(st.in_flight, 0);
        assert_eq!(st.memory_bytes, 1000);
        pod.drain_and_stop(Duration::from_secs(1)).await;
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(title_case("x-forwarded-for"), "X-Forwarded-For");
    }
}
