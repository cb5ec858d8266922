//! How a claim value is rendered as text: for comparisons in the claims
//! language, for forwarded headers and for the access log's username.

use std::borrow::Cow;

use serde_json::{Number, Value};

/// The text of a scalar claim, or `None` for null, arrays and objects.
///
/// - strings verbatim (borrowed, no allocation);
/// - `true` / `false`;
/// - integers without exponent (`1700000000`), including floats with an
///   integral value below 2^53 such as `1.7e9`, since some servers emit
///   `exp` that way;
/// - any other number in the shortest form serde_json writes (`0.5`, `1e+300`).
#[must_use]
pub fn render_scalar(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(true) => Some(Cow::Borrowed("true")),
        Value::Bool(false) => Some(Cow::Borrowed("false")),
        Value::Number(n) => Some(Cow::Owned(render_number(n))),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Whether `value` is a scalar whose rendering equals `text`, without
/// allocating for strings and booleans.
#[must_use]
pub fn scalar_equals(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        Value::Bool(b) => text == if *b { "true" } else { "false" },
        Value::Number(n) => render_number(n) == text,
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

/// 2^53: below it every integer is exact in an `f64`.
const EXACT_F64_INTEGERS: f64 = 9_007_199_254_740_992.0;

fn render_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    match n.as_f64() {
        #[allow(clippy::cast_possible_truncation)] // guarded: integral and below 2^53
        Some(f) if f.fract() == 0.0 && f.abs() < EXACT_F64_INTEGERS => (f as i64).to_string(),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> Option<String> {
        render_scalar(v).map(Cow::into_owned)
    }

    #[test]
    fn renders_scalars() {
        assert_eq!(text(&json!("a b")).as_deref(), Some("a b"));
        assert_eq!(text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(text(&json!(false)).as_deref(), Some("false"));
        assert_eq!(text(&json!(1_700_000_000)).as_deref(), Some("1700000000"));
        assert_eq!(text(&json!(-42)).as_deref(), Some("-42"));
        assert_eq!(
            text(&json!(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(text(&json!(0.5)).as_deref(), Some("0.5"));
        assert_eq!(text(&json!(-0.0)).as_deref(), Some("0"));
    }

    #[test]
    fn renders_floats_with_integral_values_as_integers() {
        let v: Value = serde_json::from_str("1.7e9").unwrap();
        assert_eq!(text(&v).as_deref(), Some("1700000000"));
        let v: Value = serde_json::from_str("1700000000.0").unwrap();
        assert_eq!(text(&v).as_deref(), Some("1700000000"));
    }

    #[test]
    fn renders_huge_numbers_in_shortest_form() {
        let v: Value = serde_json::from_str("1e300").unwrap();
        assert_eq!(text(&v).as_deref(), Some("1e+300"));
        let v: Value = serde_json::from_str("100000000000000000000000").unwrap();
        assert_eq!(text(&v).as_deref(), Some("1e+23"));
    }

    #[test]
    fn non_scalars_have_no_text() {
        assert_eq!(text(&json!(null)), None);
        assert_eq!(text(&json!([1])), None);
        assert_eq!(text(&json!({"a": 1})), None);
    }

    #[test]
    fn scalar_equals_matches_render() {
        for v in [
            json!("x"),
            json!(true),
            json!(12),
            json!(0.25),
            json!(null),
            json!([]),
            json!({}),
        ] {
            let rendered = render_scalar(&v);
            assert!(scalar_equals(&v, "x") == (rendered.as_deref() == Some("x")));
            if let Some(r) = rendered {
                assert!(scalar_equals(&v, &r));
            }
        }
    }
}
