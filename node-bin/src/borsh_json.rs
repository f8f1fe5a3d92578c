//! JSON ↔ borsh for the JSON-RPC API: a JSON array of arguments becomes the borsh encoding of
//! the tuple of those arguments, and a method's borsh output becomes JSON by a named shape.
//!
//! Arguments: string → `String`, non-negative integer → `u64`, negative integer → `i64`,
//! bool → `bool`, array → `Vec` (u32 length, then each element). Nothing else (floats, null,
//! objects) has one obvious borsh form, so it is refused. The encoder does not check that an
//! array's elements share a type; the app's decoder does.

use borsh::BorshDeserialize;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Deepest array nesting accepted in arguments (the encoder recurses once per level).
pub const MAX_ARG_DEPTH: usize = 16;

/// Why arguments or an output could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BorshJsonError {
    /// An argument has no borsh form.
    #[error("argument {path}: {reason}")]
    UnsupportedArg {
        /// Where it is, e.g. `args[1][0]`.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Arrays nested deeper than [`MAX_ARG_DEPTH`].
    #[error("arguments nested deeper than {MAX_ARG_DEPTH} levels")]
    TooDeep,
    /// An array longer than borsh's u32 length.
    #[error("argument {0}: array too long")]
    TooLong(String),
    /// The output does not decode as the requested shape.
    #[error("output is not borsh {shape}: {reason}")]
    BadOutput {
        /// The shape asked for.
        shape: &'static str,
        /// Why.
        reason: String,
    },
}

/// How to read a method's borsh output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Returns {
    /// Raw bytes, as a hex string.
    #[default]
    Bytes,
    /// `String`.
    String,
    /// `Option<String>` (null when `None`).
    OptionString,
    /// `u64`.
    U64,
    /// `bool`.
    Bool,
    /// `Vec<(String, String)>`, as `[["key","value"],...]`.
    StringPairs,
    /// `()`: no bytes, shown as null.
    Unit,
}

impl Returns {
    /// The shape's name, as clients spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::String => "string",
            Self::OptionString => "option_string",
            Self::U64 => "u64",
            Self::Bool => "bool",
            Self::StringPairs => "string_pairs",
            Self::Unit => "unit",
        }
    }
}

/// The borsh encoding of the tuple of `args`.
pub fn encode_args(args: &[Value]) -> Result<Vec<u8>, BorshJsonError> {
    let mut out = Vec::new();
    for (index, arg) in args.iter().enumerate() {
        encode_value(arg, &mut out, 1, &mut || format!("args[{index}]"))?;
    }
    Ok(out)
}

fn encode_value(
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
    path: &mut dyn FnMut() -> String,
) -> Result<(), BorshJsonError> {
    let unsupported =
        |path: &mut dyn FnMut() -> String, reason| BorshJsonError::UnsupportedArg { path: path(), reason };
    match value {
        Value::String(text) => {
            let len = u32::try_from(text.len()).map_err(|_| BorshJsonError::TooLong(path()))?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Value::Bool(flag) => out.push(u8::from(*flag)),
        Value::Number(number) => {
            if let Some(unsigned) = number.as_u64() {
                out.extend_from_slice(&unsigned.to_le_bytes());
            } else if let Some(signed) = number.as_i64() {
                out.extend_from_slice(&signed.to_le_bytes());
            } else {
                return Err(unsupported(path, "only integers have a borsh form (no floats)"));
            }
        }
        Value::Array(items) => {
            if depth >= MAX_ARG_DEPTH {
                return Err(BorshJsonError::TooDeep);
            }
            let len = u32::try_from(items.len()).map_err(|_| BorshJsonError::TooLong(path()))?;
            out.extend_from_slice(&len.to_le_bytes());
            for (index, item) in items.iter().enumerate() {
                encode_value(item, out, depth + 1, &mut || format!("{}[{index}]", path()))?;
            }
        }
        Value::Null => return Err(unsupported(path, "null has no borsh form")),
        Value::Object(_) => return Err(unsupported(path, "objects have no borsh form")),
    }
    Ok(())
}

/// `bytes` read as `returns`, as JSON.
pub fn decode_output(returns: Returns, bytes: &[u8]) -> Result<Value, BorshJsonError> {
    fn exact<T: BorshDeserialize>(shape: Returns, bytes: &[u8]) -> Result<T, BorshJsonError> {
        borsh::from_slice(bytes)
            .map_err(|error| BorshJsonError::BadOutput { shape: shape.as_str(), reason: error.to_string() })
    }
    Ok(match returns {
        Returns::Bytes => Value::String(hex::encode(bytes)),
        Returns::String => Value::String(exact::<String>(returns, bytes)?),
        Returns::OptionString => exact::<Option<String>>(returns, bytes)?.map_or(Value::Null, Value::String),
        Returns::U64 => Value::from(exact::<u64>(returns, bytes)?),
        Returns::Bool => Value::Bool(exact::<bool>(returns, bytes)?),
        Returns::StringPairs => Value::Array(
            exact::<Vec<(String, String)>>(returns, bytes)?
                .into_iter()
                .map(|(key, value)| Value::Array(vec![Value::String(key), Value::String(value)]))
                .collect(),
        ),
        Returns::Unit => {
            exact::<()>(returns, bytes)?;
            Value::Null
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn args_encode_as_the_borsh_tuple_of_their_rust_types() {
        let args = json!(["key", 7, -3, true, ["a", "b"], [[1], []]]);
        let expected = borsh::to_vec(&(
            "key".to_owned(),
            7u64,
            -3i64,
            true,
            vec!["a".to_owned(), "b".to_owned()],
            vec![vec![1u64], vec![]],
        ))
        .unwrap();
        assert_eq!(encode_args(args.as_array().unwrap()).unwrap(), expected);
        assert_eq!(encode_args(&[]).unwrap(), Vec::<u8>::new(), "no arguments is the unit tuple");
    }

    #[test]
    fn values_without_a_borsh_form_are_refused_with_their_place() {
        let error = encode_args(json!(["ok", [1, 1.5]]).as_array().unwrap()).unwrap_err();
        assert_eq!(
            error,
            BorshJsonError::UnsupportedArg {
                path: "args[1][1]".into(),
                reason: "only integers have a borsh form (no floats)"
            }
        );
        assert!(matches!(encode_args(&[Value::Null]), Err(BorshJsonError::UnsupportedArg { .. })));
        assert!(matches!(encode_args(&[json!({"a": 1})]), Err(BorshJsonError::UnsupportedArg { .. })));
        let mut deep = json!(1);
        for _ in 0..MAX_ARG_DEPTH {
            deep = json!([deep]);
        }
        assert_eq!(encode_args(&[deep]), Err(BorshJsonError::TooDeep));
    }

    #[test]
    fn outputs_decode_by_shape_and_trailing_bytes_are_an_error() {
        let string = borsh::to_vec(&"v".to_owned()).unwrap();
        assert_eq!(decode_output(Returns::String, &string).unwrap(), json!("v"));
        assert_eq!(decode_output(Returns::Bytes, &string).unwrap(), json!(hex::encode(&string)));
        assert_eq!(
            decode_output(Returns::OptionString, &borsh::to_vec(&None::<String>).unwrap()).unwrap(),
            Value::Null
        );
        assert_eq!(
            decode_output(Returns::OptionString, &borsh::to_vec(&Some("x".to_owned())).unwrap()).unwrap(),
            json!("x")
        );
        assert_eq!(decode_output(Returns::U64, &42u64.to_le_bytes()).unwrap(), json!(42));
        assert_eq!(decode_output(Returns::Bool, &[1]).unwrap(), json!(true));
        let pairs = borsh::to_vec(&vec![("k".to_owned(), "v".to_owned())]).unwrap();
        assert_eq!(decode_output(Returns::StringPairs, &pairs).unwrap(), json!([["k", "v"]]));
        assert_eq!(decode_output(Returns::Unit, &[]).unwrap(), Value::Null);
        assert!(matches!(decode_output(Returns::Unit, &[0]), Err(BorshJsonError::BadOutput { shape: "unit", .. })));
        assert!(decode_output(Returns::Bool, &[1, 0]).is_err());
        assert_eq!(serde_json::from_value::<Returns>(json!("option_string")).unwrap(), Returns::OptionString);
    }
}
