use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::*;

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    entry_points: BTreeMap<String, EntryPoint>,
    #[serde(default)]
    servers: Vec<Server>,
    kind: Option<Kind>,
    #[serde(default, deserialize_with = "section")]
    access_log: Option<AccessLog>,
    log: Option<AccessLog>,
    level: Option<Level>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryPoint {
    address: Value,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    url: String,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename = "service type", rename_all = "camelCase")]
enum Kind {
    LoadBalancer(u32),
}

#[derive(Debug, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AccessLog {
    file_path: Option<String>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Level {
    Info,
    WarnOnly,
}

fn read(value: Value) -> Result<Config, String> {
    from_value(value).map_err(|e| e.to_string())
}

fn config() -> Config {
    read(json!({})).unwrap()
}

#[test]
fn rewrites_any_case_to_the_canonical_name_and_keeps_free_names() {
    let read = read(json!({
        "ENTRYPOINTS": {"Web": {"Address": ":80"}},
        "servers": [{"URL": "u"}],
        "kind": {"loadbalancer": 1},
        "AccessLOG": {"filepath": "a.log"},
    }))
    .unwrap();
    assert_eq!(read.entry_points["Web"].address, ":80");
    assert_eq!(read.servers, [Server { url: "u".into() }]);
    assert_eq!(read.kind, Some(Kind::LoadBalancer(1)));
    assert_eq!(read.access_log.unwrap().file_path.as_deref(), Some("a.log"));
}

#[test]
fn null_sections_are_empty() {
    let read = read(json!({"entryPoints": null, "servers": null, "accessLog": null, "log": null}))
        .unwrap();
    assert!(read.entry_points.is_empty() && read.servers.is_empty());
    assert_eq!(read.access_log, Some(AccessLog::default()), "present");
    assert_eq!(read.log, None, "an Option without `section` stays None");
    assert_eq!(config().access_log, None, "absent");
    assert_eq!(
        from_value::<AccessLog>(Value::Null),
        Ok(AccessLog::default())
    );
}

#[test]
fn unknown_fields_list_the_known_ones_in_serde_order() {
    assert_eq!(
        read(json!({"entryPoints": {"web": {"adress": ":80"}}})).unwrap_err(),
        "`entryPoints.web.adress`: unknown field (known: address)"
    );
    assert_eq!(
        read(json!({"api": {}})).unwrap_err(),
        "`api`: unknown field (known: entryPoints, servers, kind, accessLog, log, level)"
    );
    // A misspelling is not a case.
    assert!(read(json!({"entry_points": {}})).is_err());
    // Refused even where the struct does not deny unknown fields.
    assert_eq!(
        read(json!({"log": {"path": "x"}})).unwrap_err(),
        "`log.path`: unknown field (known: filePath)"
    );
}

#[test]
fn a_field_given_twice_is_named_canonically() {
    assert_eq!(
        read(json!({"entryPoints": {"web": {"address": 1, "ADDRESS": 2}}})).unwrap_err(),
        "`entryPoints.web.address`: given twice (field names match case-insensitively)"
    );
}

#[test]
fn errors_name_the_path_in_lists_and_maps() {
    assert_eq!(
        read(json!({"servers": [{"url": "a"}, {"uri": "b"}]})).unwrap_err(),
        "`servers[1].uri`: unknown field (known: url)"
    );
    assert_eq!(
        read(json!({"servers": "x"})).unwrap_err(),
        "`servers`: expected a list, found a string"
    );
    assert_eq!(
        read(json!({"entryPoints": {"web": 3}})).unwrap_err(),
        "`entryPoints.web`: expected a mapping, found a number"
    );
    assert_eq!(
        read(json!({"servers": [{"url": 5}]})).unwrap_err(),
        "`servers[0].url`: invalid type: integer `5`, expected a string"
    );
    assert_eq!(
        read(json!({"entryPoints": {"web": {}}})).unwrap_err(),
        "`entryPoints.web.address`: required"
    );
    assert_eq!(
        read(json!({"kind": {"loadBalancer": "x"}})).unwrap_err(),
        "`kind.loadBalancer`: invalid type: string \"x\", expected u32"
    );
}

#[test]
fn enum_variants_match_in_any_case() {
    assert_eq!(
        read(json!({"level": "INFO"})).unwrap().level,
        Some(Level::Info)
    );
    assert_eq!(
        read(json!({"level": "Warn_Only"})).unwrap().level,
        Some(Level::WarnOnly)
    );
    let err = read(json!({"level": "debug"})).unwrap_err();
    assert_eq!(
        err,
        "`level`: unknown variant `debug`, expected `info` or `warn_only`"
    );
}

#[test]
fn one_of_names_the_unsupported_kind() {
    assert_eq!(
        read(json!({"kind": {"weighted": {}}})).unwrap_err(),
        "`kind.weighted`: unsupported service type `weighted` (ccgate supports loadBalancer)"
    );
    assert_eq!(
        read(json!({"kind": {}})).unwrap_err(),
        "`kind`: empty: expected a service type (loadBalancer)"
    );
    assert_eq!(
        read(json!({"kind": {"loadBalancer": 1, "mirroring": 2}})).unwrap_err(),
        "`kind`: holds 2 (loadBalancer, mirroring): give exactly one service type"
    );
}

#[test]
fn a_label_may_name_what_is_supported() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    #[serde(rename = "middleware type: plugin.oAuthClientCredentials")]
    enum Middleware {
        #[serde(rename = "plugin")]
        Plugin(Value),
    }
    let err = from_value::<Middleware>(json!({"headers": {}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`headers`: unsupported middleware type `headers` (ccgate supports plugin.oAuthClientCredentials)"
    );
    let err = from_value::<Middleware>(Value::Null).unwrap_err();
    assert_eq!(
        err.to_string(),
        "empty: expected a middleware type (plugin.oAuthClientCredentials)"
    );
}

#[test]
fn a_secret_field_can_hide_its_value() {
    fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        String::deserialize(d).map_err(|_| de::Error::custom("expected a string (not shown)"))
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Holder {
        #[serde(deserialize_with = "secret")]
        key: String,
    }
    let err = from_value::<Vec<Holder>>(json!([{"KEY": ["hunter2"]}])).unwrap_err();
    assert_eq!(err.field(), "[0].key");
    assert_eq!(err.reason(), "expected a string (not shown)");
}

#[test]
fn values_of_free_form_fields_are_kept_as_written() {
    let value = json!({"A": [1, {"B": null}], "c": "d"});
    assert_eq!(from_value::<Value>(value.clone()), Ok(value));
}

#[test]
fn aliases_match_like_names() {
    #[derive(Debug, Deserialize)]
    struct Renamed {
        #[serde(alias = "oldName")]
        name: String,
    }
    let read: Renamed = from_value(json!({"OLDNAME": "a"})).unwrap();
    assert_eq!(read.name, "a");
    let err = from_value::<Renamed>(json!({"other": 1})).unwrap_err();
    assert_eq!(err.reason(), "unknown field (known: name, oldName)");
}
