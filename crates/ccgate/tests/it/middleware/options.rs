//! Invalid options are refused when the middleware is built, naming the
//! field and the reason.

use ccgate::Middleware;
use ccgate::options::Options;
use serde_json::{Value, json};

fn error(value: Value) -> (String, String) {
    let built = Options::from_value(value).and_then(Middleware::new);
    let error = built.expect_err("invalid options");
    (error.field().to_owned(), error.to_string())
}

fn valid() -> Value {
    json!({"url": "https://idp.example.com/token", "audience": "https://api.example.com"})
}

fn with(changes: Value) -> Value {
    let mut value = valid();
    let Value::Object(changes) = changes else {
        panic!("changes are an object")
    };
    for (key, field) in changes {
        if field.is_null() {
            value.as_object_mut().unwrap().remove(&key);
        } else {
            value[key] = field;
        }
    }
    value
}

#[test]
fn the_valid_base_builds() {
    assert!(Middleware::new(Options::from_value(valid()).unwrap()).is_ok());
    for secret in [
        "0123456789abcdef",
        "0123456789abcdef01234567",
        "0123456789abcdef0123456789abcdef",
    ] {
        let options = Options::from_value(with(json!({"store": {"secret": secret}}))).unwrap();
        assert!(Middleware::new(options).is_ok(), "{} bytes", secret.len());
    }
}

#[test]
fn every_invalid_field_is_named_with_its_reason() {
    #[rustfmt::skip]
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(json!({"url": null})), "url", "required"),
        (with(json!({"url": "ftp://idp/token"})), "url", "http"),
        (with(json!({"url": "not a url"})), "url", ""),
        (with(json!({"audience": null})), "audience", "required"),
        (with(json!({"clientID": "gateway"})), "clientSecret", "must be set when clientID is set"),
        (with(json!({"clientSecret": "s3cret"})), "clientID", "must be set when clientSecret is set"),
        (with(json!({"store": {"secret": "short"}})), "store.secret", "must be 16, 24 or 32 bytes long"),
        (with(json!({"store": {"secret": "0123456789abcdef0"}})), "store.secret", "not 17"),
        (with(json!({"store": {"redis": {}}})), "store.redis.endpoints", "required"),
        (with(json!({"store": {"redis": {"endpoints": ["redis://h:6379"]}}})), "store.redis.endpoints[0]", "not a URL"),
        (with(json!({"store": {"redis": {"endpoints": ["h:6379", "h"]}}})), "store.redis.endpoints[1]", "port is missing"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1", "b:2"]}}})), "store.redis.endpoints", "one endpoint"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "sentinel": {"password": "p"}}}})), "store.redis.sentinel.masterSet", "required"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "cluster": true, "sentinel": {"masterSet": "m"}}}})), "store.redis.sentinel", "cannot be used"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "database": -1}}})), "store.redis.database", ""),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "tls": {"caBundle": "not a pem"}}}})), "store.redis.tls.caBundle", "not PEM"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "tls": {"cert": "x"}}}})), "store.redis.tls.key", "its key is needed"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "tls": {"cert": "x", "key": "y"}}}})), "store.redis.tls.cert", "not PEM"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "password": "urn:k8s:secret:redis:password"}}})), "store.redis.password", "was not resolved"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "tls": {"key": "urn:k8s:secret:redis:key"}}}})), "store.redis.tls.key", "was not resolved"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "sentinel": {"masterSet": "m", "password": "urn:k8s:secret:s:p"}}}})), "store.redis.sentinel.password", "was not resolved"),
        (with(json!({"store": {"redis": {"endpoints": ["a:1"], "sentinels": {}}}})), "store.redis.sentinels", "unknown field"),
        (with(json!({"claims": "Equals(`grp`)"})), "claims", "at column 1: `Equals` takes 2 arguments, found 1"),
        (with(json!({"claims": "Equals(`grp`, `admin`) & x"})), "claims", "column 24"),
        (with(json!({"forwardHeaders": {"Bad Name": "grp"}})), "forwardHeaders.Bad Name", "not a valid HTTP header name"),
        (with(json!({"forwardHeaders": {"Authorization": "grp"}})), "forwardHeaders.Authorization", "cannot be set from a claim"),
        (with(json!({"forwardHeaders": {"X-Group": "a..b"}})), "forwardHeaders.X-Group", "empty key"),
        (with(json!({"usernameClaim": "user\\x"})), "usernameClaim", "invalid escape"),
        (with(json!({"clientConfig": {"timeoutSeconds": 0}})), "clientConfig.timeoutSeconds", "between 1 and 300"),
        (with(json!({"clientConfig": {"maxRetries": 11}})), "clientConfig.maxRetries", "at most 10"),
        (with(json!({"clientConfig": {"tls": {"ca": "not a pem"}}})), "clientConfig.tls.ca", ""),
        (with(json!({"clientConfig": {"tls": {"cert": "not a pem"}}})), "clientConfig.tls.key", "its key is needed"),
        (with(json!({"clientConfig": {"tls": {"cert": "not a pem", "key": "not a key"}}})), "clientConfig.tls.cert", ""),
        (with(json!({"scopes": ["read write"]})), "scopes", ""),
        (with(json!({"authMethod": "magic"})), "authMethod", "unknown variant"),
        (with(json!({"clientConfig": {"timeout": 3}})), "clientConfig.timeout", "unknown field (known: tls, timeoutSeconds, maxRetries)"),
        (with(json!({"plugin": {}})), "plugin", "unknown field"),
        (
            with(json!({"clientID": "urn:k8s:my-secret:my-secret:clientID", "clientSecret": "x"})),
            "clientID",
            "expected urn:k8s:secret:NAME:KEY",
        ),
    ];
    let mut failures = Vec::new();
    for (value, field, words) in &cases {
        let (got_field, message) = error(value.clone());
        if got_field != *field
            || !message.contains(words)
            || !message.contains(&format!("`{field}`"))
        {
            failures.push(format!(
                "{value}: got `{got_field}`: {message}; want `{field}` and {words:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn errors_never_show_secret_values() {
    let (_, message) = error(with(json!({"store": {"secret": "hunter2-not-16"}})));
    assert!(!message.contains("hunter2"), "{message}");
    let (_, message) = error(with(
        json!({"clientConfig": {"tls": {"key": "-----BEGIN PRIVATE KEY-----\nhunter2\n", "cert": "x"}}}),
    ));
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn database_with_cluster_is_ignored_with_a_warning() {
    let logs = crate::support::LogCapture::start();
    let options = Options::from_value(with(
        json!({"store": {"redis": {"endpoints": ["127.0.0.1:1"], "cluster": true, "database": 3}}}),
    ))
    .unwrap();
    assert!(Middleware::new(options).is_ok(), "a warning, not an error");
    let logged = logs.text();
    assert!(
        logged.contains("store.redis.database is ignored"),
        "{logged}"
    );
}

#[test]
fn every_redis_mode_builds_without_connecting() {
    for redis in [
        json!({"endpoints": ["127.0.0.1:1"], "username": "u", "password": "p", "database": 1}),
        json!({"endpoints": ["127.0.0.1:1", "127.0.0.1:2"], "sentinel": {"masterSet": "m", "password": "s"}}),
        json!({"endpoints": ["127.0.0.1:1", "127.0.0.1:2"], "cluster": true}),
        json!({"endpoints": ["127.0.0.1:1"], "tls": {}}),
        json!({"endpoints": ["127.0.0.1:1"], "cluster": true, "tls": {"insecureSkipVerify": true}}),
    ] {
        let options = Options::from_value(with(json!({"store": {"redis": redis}}))).unwrap();
        assert!(Middleware::new(options).is_ok(), "{redis}");
    }
}

#[test]
fn client_authentication_and_form_options_name_their_field() {
    let key = crate::support::idp::test_key("ec-p256.sec1.pem");
    let key_line = key.lines().nth(1).expect("a key line").to_owned();
    #[rustfmt::skip]
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(json!({"authMethod": "private_key_jwt", "privateKey": key})), "clientID", "required with authMethod private_key_jwt"),
        (with(json!({"authMethod": "private_key_jwt", "clientID": "c"})), "privateKey", "required"),
        (with(json!({"authMethod": "private_key_jwt", "clientID": "c", "clientSecret": "s", "privateKey": key})), "clientSecret", "must not be set"),
        (with(json!({"authMethod": "private_key_jwt", "clientID": "c", "privateKey": "/etc/key.pem"})), "privateKey", "not PEM text"),
        (with(json!({"authMethod": "private_key_jwt", "clientID": "c", "privateKey": crate::support::idp::test_key("rsa-1024.pem")})), "privateKey", "unsupported key"),
        (with(json!({"authMethod": "private_key_jwt", "clientID": "c", "privateKey": crate::support::idp::test_key("ec-p384.sec1.pem")})), "privateKey", "unsupported key"),
        (with(json!({"authMethod": "client_secret_jwt", "privateKey": key})), "privateKey", "only used with authMethod private_key_jwt"),
        (with(json!({"privateKeyID": "k1"})), "privateKeyID", "only used with authMethod private_key_jwt"),
        (with(json!({"authMethod": "client_secret_jwt", "clientID": "c"})), "clientSecret", "must be set"),
        (with(json!({"authMethod": "tls_client_auth"})), "clientID", "required with authMethod tls_client_auth"),
        (with(json!({"authMethod": "tls_client_auth", "clientID": "c", "clientSecret": "s"})), "clientSecret", "must not be set"),
        (with(json!({"authMethod": "tls_client_auth", "clientID": "c"})), "clientConfig.tls.cert", "required with authMethod tls_client_auth"),
        (with(json!({"parameters": {"Grant_Type": "password"}})), "parameters.Grant_Type", "`grant_type` is set by ccgate"),
        (with(json!({"parameters": {"CLIENT_ASSERTION": "x"}})), "parameters.CLIENT_ASSERTION", "`client_assertion` is set by ccgate"),
        (with(json!({"parameters": {"resource": "x"}})), "parameters.resource", "is set by ccgate"),
        (with(json!({"parameters": {"audience": "x"}})), "parameters.audience", "is set by ccgate"),
        (with(json!({"resource": "not-absolute"})), "resource", "absolute URI"),
        (with(json!({"resource": ["https://api/#x"]})), "resource", "fragment"),
        (with(json!({"audience": null})), "audience", "required (unless resource or scopes is set)"),
        (with(json!({"authMethod": "private_key_jwt", "clientID": "c", "privateKey": "urn:k8s:secret:keys:key.pem"})), "privateKey", "was not resolved"),
    ];
    for (value, field, reason) in cases {
        let (got_field, message) = error(value.clone());
        assert_eq!(got_field, field, "{value}: {message}");
        assert!(message.contains(reason), "{value}: {message}");
        assert!(!message.contains(&key_line), "{message}");
    }
    for ok in [
        with(json!({"audience": null, "resource": "https://api.example.com/"})),
        with(json!({"audience": null, "scopes": ["read"]})),
        with(json!({"parameters": {"tenant": "a"}, "resource": ["https://a/", "https://b/"]})),
        with(json!({"authMethod": "client_secret_jwt"})),
        with(
            json!({"authMethod": "private_key_jwt", "clientID": "c", "privateKey": key, "privateKeyID": "k"}),
        ),
    ] {
        let built = Options::from_value(ok.clone()).and_then(Middleware::new);
        assert!(built.is_ok(), "{ok}: {:?}", built.err());
    }
}

#[test]
fn introspection_and_verify_name_their_field() {
    let introspect = |fields: Value| with(json!({"introspection": fields}));
    let url = "https://idp.example.com/introspect";
    #[rustfmt::skip]
    let cases: Vec<(Value, &str, &str)> = vec![
        (introspect(json!({})), "introspection.url", "required"),
        (introspect(json!({"url": "ftp://idp/introspect"})), "introspection.url", "http"),
        (introspect(json!({"url": "https://user:pw@idp/introspect"})), "introspection.url", "credentials"),
        (introspect(json!({"url": url, "clientID": "rs"})), "introspection.clientSecret", "must be set"),
        (introspect(json!({"url": url, "clientSecret": "introspection-pw"})), "introspection.clientID", "must be set"),
        (introspect(json!({"url": url, "clientID": "rs", "clientSecret": "introspection-pw", "authMethod": "tls_client_auth"})), "introspection.clientSecret", "must not be set"),
        (introspect(json!({"url": url, "clientID": "rs", "authMethod": "tls_client_auth"})), "clientConfig.tls.cert", "for introspection"),
        (introspect(json!({"url": url, "clientID": "rs", "clientSecret": "urn:k8s:secret:idp:pw"})), "introspection.clientSecret", "was not resolved"),
        (introspect(json!({"url": url, "authMethod": "magic"})), "introspection.authMethod", ""),
        (with(json!({"verify": {}})), "verify.jwksURL", "required"),
        (with(json!({"verify": {"jwksURL": "file:///etc/jwks.json"}})), "verify.jwksURL", "http"),
        (with(json!({"verify": {"jwksURL": "not a url"}})), "verify.jwksURL", "absolute URL"),
        (with(json!({"verify": {"jwksURL": "https://idp/jwks", "algorithms": ["HS256"]}})), "verify.algorithms", "unknown field"),
    ];
    for (value, field, reason) in cases {
        let (got_field, message) = error(value.clone());
        assert_eq!(got_field, field, "{value}: {message}");
        assert!(message.contains(reason), "{value}: {message}");
        assert!(!message.contains("introspection-pw"), "{message}");
    }
    let ok = with(json!({
        "introspection": {"URL": url, "clientId": "rs", "clientSecret": "introspection-pw"},
        "verify": {"jwksUrl": "https://idp.example.com/jwks", "issuer": "https://idp.example.com/",
                   "audience": "https://api.example.com"},
    }));
    let middleware = Options::from_value(ok)
        .and_then(Middleware::new)
        .expect("valid");
    assert!(!format!("{middleware:?}").contains("introspection-pw"));
}
