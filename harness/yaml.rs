//! YAML reading with errors that name the file, line, column and field path.
//! serde_norway gives the location, serde_path_to_error the field path.
//! Checks that run after decoding (cross-field rules) find their line with
//! `line_of`, a small block-style path walker.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::InputError;

/// Decodes one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, InputError> {
    let de = serde_norway::Deserializer::from_str(text);
    decode(file, de)
}

/// Decodes a deserializer (one document of a stream) into `T`.
pub fn decode<'de, T: DeserializeOwned>(
    file: &Path,
    de: serde_norway::Deserializer<'de>,
) -> Result<T, InputError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let loc = inner.location();
        let mut msg = strip_location(&inner.to_string());
        // serde_norway starts some messages with its own (shorter) path; we print ours.
        if let Some((head, rest)) = msg.split_once(": ") {
            if !head.contains(' ') && path.starts_with(head) {
                msg = rest.to_string();
            }
        }
        let err = InputError::new(file, msg).at(
            loc.as_ref().map(|l| l.line()),
            loc.as_ref().map(|l| l.column()),
        );
        if path == "." || path.is_empty() {
            err
        } else {
            err.field(path)
        }
    })
}

/// serde_norway appends " at line L column C" to messages; we print the
/// location ourselves, in front, as compilers do.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// Finds the 1-based line of a dotted field path such as `spec.maxReplicas`
/// or `load.stages[1].over` in block-style YAML. `None` when the text uses a
/// shape the walker does not follow (flow style); the error is then reported
/// without a line rather than with a wrong one.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    // Indentation of the mapping we are inside; keys must be deeper.
    let mut parent_indent: isize = -1;
    let mut found = None;
    for seg in split_path(path) {
        match seg {
            Seg::Key(key) => {
                let mut hit = None;
                for (i, raw) in lines.iter().enumerate().skip(from) {
                    let (indent, body) = indent_and_body(raw);
                    if body.is_empty() || body.starts_with('#') {
                        continue;
                    }
                    if (indent as isize) <= parent_indent && i > from {
                        break;
                    }
                    if body.starts_with(&format!("{key}:")) {
                        hit = Some((i, indent));
                        break;
                    }
                }
                let (i, indent) = hit?;
                found = Some(i + 1);
                from = i + 1;
                parent_indent = indent as isize;
            }
            Seg::Index(n) => {
                let mut count = 0usize;
                let mut hit = None;
                for (i, raw) in lines.iter().enumerate().skip(from) {
                    let trimmed = raw.trim_start();
                    let indent = raw.len() - trimmed.len();
                    if trimmed.is_empty() || trimmed.starts_with('#') {
                        continue;
                    }
                    if (indent as isize) < parent_indent {
                        break;
                    }
                    if trimmed.starts_with("- ") || trimmed == "-" {
                        if count == n {
                            hit = Some((i, indent));
                            break;
                        }
                        count += 1;
                    }
                }
                let (i, indent) = hit?;
                found = Some(i + 1);
                from = i;
                // Keys of the item sit at the dash's column + 2.
                parent_indent = indent as isize + 1;
            }
        }
    }
    found
}

/// The line of `path`, else of its nearest ancestor (flow-style maps such as
/// `target: { route: x }` are only followed down to their key).
pub fn nearest_line(text: &str, path: &str) -> Option<usize> {
    let mut p = path;
    loop {
        if let Some(l) = line_of(text, p) {
            return Some(l);
        }
        p = &p[..p.rfind(['.', '['])?];
    }
}

/// A line's indentation and content, treating "- key: v" as "key: v" indented past the dash.
fn indent_and_body(raw: &str) -> (usize, &str) {
    let trimmed = raw.trim_start();
    let mut indent = raw.len() - trimmed.len();
    let mut body = trimmed;
    while let Some(rest) = body.strip_prefix("- ") {
        indent += 2;
        body = rest.trim_start();
    }
    (indent, body)
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(n) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(n));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: x
load:
  request:
    path: /get
  stages:
    - ramp_to: 10
      over: 1m
    - hold: 2m
    - ramp_to: -5
      over: 1m
spec:
  minReplicas: 2
  maxReplicas: 1
";

    #[test]
    fn finds_nested_keys_and_list_items() {
        assert_eq!(line_of(DOC, "load.request.path"), Some(4));
        assert_eq!(line_of(DOC, "load.stages[0].over"), Some(7));
        assert_eq!(line_of(DOC, "load.stages[1]"), Some(8));
        assert_eq!(line_of(DOC, "load.stages[2].ramp_to"), Some(9));
        assert_eq!(line_of(DOC, "spec.maxReplicas"), Some(13));
        assert_eq!(line_of(DOC, "spec.nothing"), None);
    }

    #[test]
    fn decode_errors_carry_path_and_line() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: Inner,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            b: u32,
        }
        let e = from_str::<T>(Path::new("f.yaml"), "a:\n  b: x\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("a.b"));
        assert_eq!(e.line, Some(2));
        assert!(!e.message.contains(" at line "), "{}", e.message);
    }
}
