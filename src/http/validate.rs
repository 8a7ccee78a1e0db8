//! Parsing at the edge: raw paths, query strings and headers become checked values
//! before anything reaches the state machine (STYLE.md #12). Every refusal is a
//! `bad_request` naming what was wrong.
//!
//! One decoding rule for every URL part ([`percent_decoded`]: `+` is a plus, in paths
//! and queries alike) and one set of key rules ([`validate_key`]) for a key wherever it
//! comes from: the path, `start_after`, `prefix` (which may also be empty), a watch's
//! `key`.

use crate::http::error::ApiError;
use crate::kv::keys::KEY_BYTES_MAX;
use crate::kv::SessionId;
use actix_web::HttpRequest;
use percent_encoding::percent_decode;

/// The path prefix of single-key routes.
pub const KEYS_PATH: &str = "/v1/keys/";
/// Default number of entries of a listing.
pub const LIST_LIMIT_DEFAULT: usize = 1000;
/// Largest number of entries a listing may ask for.
pub const LIST_LIMIT_MAX: usize = 10_000;

/// Checks a key: 1..=1024 bytes of UTF-8 without control characters.
pub fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::BadRequest("the key is empty".into()));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(ApiError::BadRequest(format!(
            "the key is {} bytes; the limit is {KEY_BYTES_MAX}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "the key contains a control character".into(),
        ));
    }
    Ok(())
}

/// Percent-decodes one URL component as UTF-8. The one rule for keys in URLs, in the
/// path and in query parameters alike (API.md: keys are percent-encoded): `%XX` is a
/// byte, everything else stands for itself, `+` included (a space is `%20`; the
/// form-encoding habit of `+` for a space is not followed, so that `a+b` names the same
/// key in `/v1/keys/a+b` and in `?prefix=a+b`).
pub fn percent_decoded(raw: &str, what: &str) -> Result<String, ApiError> {
    percent_decode(raw.as_bytes())
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::BadRequest(format!("{what} is not UTF-8 once percent-decoded")))
}

/// The key of a `/v1/keys/{key}` request: the rest of the raw path, percent-decoded.
pub fn key_from_request(req: &HttpRequest) -> Result<String, ApiError> {
    let path = req.uri().path();
    let raw = path
        .strip_prefix(KEYS_PATH)
        .ok_or_else(|| ApiError::BadRequest("the path has no key".into()))?;
    let key = percent_decoded(raw, "the key")?;
    validate_key(&key)?;
    Ok(key)
}

/// Checks a key given in the query parameter `name` (`start_after`, the watch's
/// `key`): the rules of [`validate_key`], the refusal naming the parameter.
pub fn validate_key_param(name: &str, value: &str) -> Result<(), ApiError> {
    validate_key(value).map_err(|e| ApiError::BadRequest(format!("{name}: {}", e.message())))
}

/// Checks a key prefix given in the query parameter `name` (a listing's or a watch's
/// `prefix`): empty (every key) or a valid key.
pub fn validate_prefix_param(name: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Ok(());
    }
    validate_key_param(name, value)
}

/// A query string's (name, value) pairs, each percent-decoded by [`percent_decoded`]
/// (`+` is a plus, as in paths).
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decoded(name, "a query parameter name")?;
        let value = percent_decoded(value, &format!("query parameter {name}"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// The parsed query of one request, looked up by name.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses the request's query string.
    pub fn of(req: &HttpRequest) -> Result<Query, ApiError> {
        Ok(Query(parse_query(req.query_string())?))
    }

    /// The value of `name`; a parameter given twice is refused.
    pub fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found = self.0.iter().filter(|(n, _)| n == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(ApiError::BadRequest(format!(
                "query parameter {name} given twice"
            )));
        }
        Ok(first.map(|(_, v)| v.as_str()))
    }

    /// A u64 parameter.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)?
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!("{name}={v:?} is not a non-negative integer"))
                })
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`; a bare `name` is true).
    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name)? {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(v) => Err(ApiError::BadRequest(format!(
                "{name}={v:?} is not true or false"
            ))),
        }
    }

    /// A session id parameter.
    pub fn session(&self, name: &str) -> Result<Option<SessionId>, ApiError> {
        self.get(name)?
            .map(|v| {
                v.parse::<SessionId>()
                    .map_err(|e| ApiError::BadRequest(e.to_string()))
            })
            .transpose()
    }
}

/// How a read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the request began (read index).
    Linearizable,
    /// Served from the local replica.
    Serializable,
}

/// The `consistency` parameter (default linearizable).
pub fn consistency(query: &Query) -> Result<Consistency, ApiError> {
    match query.get("consistency")? {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("serializable") => Ok(Consistency::Serializable),
        Some(v) => Err(ApiError::BadRequest(format!(
            "consistency={v:?}: expected linearizable or serializable"
        ))),
    }
}

/// The `limit` parameter of a listing.
pub fn list_limit(query: &Query) -> Result<usize, ApiError> {
    match query.u64("limit")? {
        None => Ok(LIST_LIMIT_DEFAULT),
        Some(n) if (1..=LIST_LIMIT_MAX as u64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit={n}: expected 1..={LIST_LIMIT_MAX}"
        ))),
    }
}

/// The expected version of a conditional write: `?version=N`, `If-Match: "N"`,
/// `If-None-Match: *` (= 0). Conflicting conditions are refused.
pub fn expected_version(req: &HttpRequest, query: &Query) -> Result<Option<u64>, ApiError> {
    let mut found: Vec<u64> = Vec::new();
    if let Some(v) = query.u64("version")? {
        found.push(v);
    }
    let header = |name: &str| -> Result<Option<String>, ApiError> {
        req.headers()
            .get(name)
            .map(|h| {
                h.to_str()
                    .map(|s| s.trim().to_string())
                    .map_err(|_| ApiError::BadRequest(format!("{name} is not ASCII")))
            })
            .transpose()
    };
    if let Some(m) = header("If-Match")? {
        let inner = m
            .strip_prefix("W/")
            .unwrap_or(&m)
            .trim_matches('"')
            .to_string();
        let v = inner.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "If-Match {m:?}: expected a quoted version like \"3\""
            ))
        })?;
        found.push(v);
    }
    if let Some(m) = header("If-None-Match")? {
        if m != "*" {
            return Err(ApiError::BadRequest(format!(
                "If-None-Match {m:?}: only * is supported"
            )));
        }
        found.push(0);
    }
    match found.as_slice() {
        [] => Ok(None),
        [first, rest @ ..] if rest.iter().all(|v| v == first) => Ok(Some(*first)),
        _ => Err(ApiError::BadRequest(
            "conflicting version conditions (version, If-Match, If-None-Match)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn keys_are_decoded_and_checked() {
        let req = TestRequest::with_uri("/v1/keys/a%2Fb/c%20d").to_http_request();
        assert_eq!(key_from_request(&req), Ok("a/b/c d".to_string()));
        let req = TestRequest::with_uri("/v1/keys/%00").to_http_request();
        assert!(key_from_request(&req).is_err());
        let req = TestRequest::with_uri("/v1/keys/%ff").to_http_request();
        assert!(key_from_request(&req).is_err());
        let long = "x".repeat(1025);
        let req = TestRequest::with_uri(&format!("/v1/keys/{long}")).to_http_request();
        assert!(key_from_request(&req).is_err());
        assert!(validate_key(&"x".repeat(1024)).is_ok());
        assert!(validate_key("").is_err());
    }

    #[test]
    fn queries_parse_and_refuse_bad_values() {
        let q = Query(parse_query("limit=5&keys_only=true&prefix=a%2Bb+c%20d&x").unwrap());
        assert_eq!(list_limit(&q), Ok(5));
        assert_eq!(q.bool("keys_only"), Ok(true));
        assert_eq!(q.bool("x"), Ok(true));
        assert_eq!(q.get("prefix"), Ok(Some("a+b+c d")));
        assert!(parse_query("prefix=%ff").is_err());
        let q = Query(parse_query("limit=0").unwrap());
        assert!(list_limit(&q).is_err());
        let q = Query(parse_query("limit=abc&consistency=eventual").unwrap());
        assert!(list_limit(&q).is_err());
        assert!(consistency(&q).is_err());
        let q = Query(parse_query("version=1&version=2").unwrap());
        assert!(q.get("version").is_err());
    }

    #[test]
    fn key_and_prefix_params_follow_the_key_rules() {
        assert!(validate_key_param("start_after", "a+b").is_ok());
        for bad in ["", "a\u{1}", "\u{7f}"] {
            let e = validate_key_param("start_after", bad).unwrap_err();
            assert!(e.message().starts_with("start_after: "), "{e}");
        }
        assert!(validate_key_param("start_after", &"x".repeat(1025)).is_err());
        assert!(validate_prefix_param("prefix", "").is_ok());
        assert!(validate_prefix_param("prefix", "p/").is_ok());
        assert!(validate_prefix_param("prefix", "p\n").is_err());
        // The path and the query decode one way.
        let req = TestRequest::with_uri("/v1/keys/a+b%20c").to_http_request();
        let q = Query(parse_query("prefix=a+b%20c").unwrap());
        assert_eq!(
            key_from_request(&req).ok().as_deref(),
            q.get("prefix").unwrap()
        );
    }

    #[test]
    fn version_conditions_come_from_query_or_headers() {
        let req = TestRequest::with_uri("/v1/keys/a?version=3").to_http_request();
        let q = Query::of(&req).unwrap();
        assert_eq!(expected_version(&req, &q), Ok(Some(3)));
        let req = TestRequest::with_uri("/v1/keys/a")
            .insert_header(("If-Match", "\"7\""))
            .to_http_request();
        let q = Query::of(&req).unwrap();
        assert_eq!(expected_version(&req, &q), Ok(Some(7)));
        let req = TestRequest::with_uri("/v1/keys/a")
            .insert_header(("If-None-Match", "*"))
            .to_http_request();
        let q = Query::of(&req).unwrap();
        assert_eq!(expected_version(&req, &q), Ok(Some(0)));
        let req = TestRequest::with_uri("/v1/keys/a?version=2")
            .insert_header(("If-Match", "\"7\""))
            .to_http_request();
        let q = Query::of(&req).unwrap();
        assert!(expected_version(&req, &q).is_err());
    }
}
