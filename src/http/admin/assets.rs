//! The dashboard's built files, embedded in the binary (built from
//! `dashboard/src` by `npm run build`; the test command checks the checked-in
//! build matches its source). Nothing is fetched from elsewhere: the page's
//! Content-Security-Policy allows this origin only.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::OnceLock;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/assets/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../dashboard/dist/app.js"),
    },
    Asset {
        path: "/assets/app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../dashboard/dist/app.css"),
    },
];

const INDEX: &[u8] = include_bytes!("../../../dashboard/dist/index.html");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn etag(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(bytes)[..8]))
}

fn etags() -> &'static Vec<String> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut v: Vec<String> = ASSETS.iter().map(|a| etag(a.bytes)).collect();
        v.push(etag(INDEX));
        v
    })
}

fn serve(
    headers: &HeaderMap,
    bytes: &'static [u8],
    content_type: &'static str,
    tag: &str,
) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time: a new binary brings new files under the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The page itself (at `/`).
pub fn index(headers: &HeaderMap) -> Response {
    let tag = etags().last().cloned().unwrap_or_default();
    let mut resp = serve(headers, INDEX, "text/html; charset=utf-8", &tag);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new();
    for (i, a) in ASSETS.iter().enumerate() {
        r = r.route(
            a.path,
            get(move |headers: HeaderMap| async move {
                let tag = etags().get(i).cloned().unwrap_or_default();
                serve(&headers, a.bytes, a.content_type, &tag)
            }),
        );
    }
    r
}
