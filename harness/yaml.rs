//! YAML reading with errors that name the file, line, column and field path.
//! serde_norway gives the location, serde_path_to_error the field path.
//! Checks that run after decoding (cross-field rules) find their line with
//! `line_of`, a small block-style path walker.
//!
//! Before any parsing, `read` and `check_shape` bound the input (size,
//! nesting depth) so a hostile file costs linear time, and turn the cases
//! where the parser's own message misleads (a directory, a symlink loop, a
//! BOM, a tab in indentation, a duplicate key) into plain ones.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize as _;

use crate::error::InputError;

/// Largest YAML file read (scenario or manifest); real ones are a few KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Deepest nesting of mappings and lists, block and flow together. The
/// parser takes quadratic time on deep flow nesting, so this is checked
/// on the text before parsing.
pub const MAX_DEPTH: usize = 64;

/// Reads a YAML file: refuses what is not a regular file or is too large
/// (before reading it), and drops a UTF-8 byte-order mark.
pub fn read(path: &Path, what: &str) -> Result<String, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        // ELOOP: following the link never ends.
        if e.raw_os_error() == Some(libc::ELOOP) {
            InputError::new(path, format!("{what} is a symbolic link loop, not a file"))
        } else {
            InputError::new(path, format!("cannot read {what}: {e}"))
        }
    })?;
    if meta.is_dir() {
        return Err(InputError::new(
            path,
            format!("{what} is a directory; give a YAML file"),
        ));
    }
    if !meta.is_file() {
        return Err(InputError::new(
            path,
            format!("{what} is not a regular file (a device, a pipe or a socket)"),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(InputError::new(
            path,
            format!(
                "{what} is {} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(path, format!("cannot read {what}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        InputError::new(path, format!("{what} is not UTF-8 text (byte {at})")).at(Some(line), None)
    })?;
    Ok(strip_bom(text))
}

/// A leading byte-order mark is legal YAML; dropping it keeps line lookups
/// and the text shown back to the user clean.
pub fn strip_bom(text: String) -> String {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// Size and nesting depth, measured on the text in one linear pass, so
/// that nothing pathological reaches the parser. Block depth follows the
/// indentation (each `- ` opens a level too), flow depth the brackets
/// outside quotes and comments.
pub fn check_shape(file: &Path, text: &str) -> Result<(), InputError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(InputError::new(
            file,
            format!(
                "is {} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)",
                text.len()
            ),
        ));
    }
    let too_deep = |line: usize| {
        InputError::new(
            file,
            format!("nesting deeper than {MAX_DEPTH} levels; the limit keeps parsing fast"),
        )
        .at(Some(line), None)
    };
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_start_matches(' ');
        if quote.is_none() && flow == 0 {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut indent = raw.len() - trimmed.len();
            let mut body = trimmed;
            let mut levels = 0;
            while let Some(rest) = body.strip_prefix("- ") {
                levels += 1;
                indent += 2;
                body = rest.trim_start_matches(' ');
            }
            while indents
                .last()
                .is_some_and(|&top| top >= indent - 2 * levels)
            {
                indents.pop();
            }
            indents.push(indent - 2 * levels);
            if indents.len() + levels > MAX_DEPTH {
                return Err(too_deep(line));
            }
        }
        let mut prev = ' ';
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match quote {
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some(q) if c == q => {
                    // '' inside single quotes is an escaped quote.
                    if q == '\'' && chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                Some(_) => {}
                None => match c {
                    '#' if prev == ' ' || prev == '\t' => break,
                    // A quote opens a scalar only where a scalar may start.
                    '"' | '\'' if matches!(prev, ' ' | '\t' | '[' | '{' | ',' | ':') => {
                        quote = Some(c)
                    }
                    '[' | '{' => {
                        flow += 1;
                        if indents.len() + flow > MAX_DEPTH {
                            return Err(too_deep(line));
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            prev = c;
        }
    }
    Ok(())
}

/// Refuses a stream of several documents where one is expected, at the
/// line of the second one's `---` (serde would read only the first, or
/// give a message without a line).
pub fn one_document(file: &Path, text: &str, what: &str) -> Result<(), InputError> {
    check_shape(file, text)?;
    // After a syntax error the document iterator yields errors forever:
    // look at two documents at most, and leave errors to the typed decode.
    let mut docs = serde_norway::Deserializer::from_str(text);
    let (Some(first), Some(_)) = (docs.next(), docs.next()) else {
        return Ok(());
    };
    if serde::de::IgnoredAny::deserialize(first).is_err() {
        return Ok(());
    }
    let mut content = false;
    let second = text.lines().enumerate().find_map(|(i, l)| {
        let sep = l == "---" || l.starts_with("--- ");
        if sep && content {
            return Some(i + 1);
        }
        content |= !sep && !l.trim().is_empty() && !l.trim_start().starts_with('#');
        None
    });
    Err(InputError::new(
        file,
        format!("a second YAML document begins here (`---`); {what} is one document"),
    )
    .at(second, None))
}

/// Decodes one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, InputError> {
    check_shape(file, text)?;
    check_duplicate_keys(file, text)?;
    let de = serde_norway::Deserializer::from_str(text);
    decode(file, de).map_err(|e| explain_tab(text, e))
}

/// Decodes one document into `T`, also reporting every field `T` does not
/// know, which serde would otherwise skip. The Kubernetes types skip
/// unknown fields (as the API server does without `--validate=strict`);
/// `serde_ignored` hands us the path of each one it skips, so a typo such
/// as `maxReplica` is an error instead of a silent default.
pub fn from_str_strict<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, InputError> {
    check_shape(file, text)?;
    check_duplicate_keys(file, text)?;
    let mut unknown: Vec<String> = Vec::new();
    let de = serde_norway::Deserializer::from_str(text);
    let value: T = serde_ignored::deserialize(de, |p| {
        let path = ignored_path(&p);
        // The generated Gateway API types read apiVersion and kind apart
        // (the caller has checked them already).
        if path != "apiVersion" && path != "kind" {
            unknown.push(path);
        }
    })
    .map_err(|e| {
        // Decode again with serde_path_to_error for the field path.
        let de = serde_norway::Deserializer::from_str(text);
        match decode::<T>(file, de) {
            Err(located) => located,
            Ok(_) => InputError::new(file, strip_location(&e.to_string())),
        }
    })
    .map_err(|e| explain_tab(text, e))?;
    if let Some(path) = unknown.first() {
        let key = path.rsplit('.').next().unwrap_or(path);
        return Err(InputError::new(
            file,
            format!("unknown field `{key}` (as `kubectl apply --validate=strict` refuses it)"),
        )
        .field(path.clone())
        .at(nearest_line(text, path), None));
    }
    Ok(value)
}

/// `serde_ignored`'s path in our notation: `spec.metrics[0].type`.
fn ignored_path(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let head = ignored_path(parent);
            if head.is_empty() {
                key.clone()
            } else {
                format!("{head}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// Duplicate keys are an error in YAML, but typed maps (labels, headers)
/// keep the last one silently. Decoding into serde_norway's own `Value`
/// refuses them, naming the key, at the duplicate's line.
fn check_duplicate_keys(file: &Path, text: &str) -> Result<(), InputError> {
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Err(e) if e.to_string().contains("duplicate entry") => {
            let loc = e.location();
            let msg = strip_location(&e.to_string());
            let key = msg
                .split_once("with key ")
                .map(|(_, k)| k.to_string())
                .unwrap_or_default();
            // The parser points at the mapping; the user wants the repeat.
            let from = loc.as_ref().map(|l| l.line()).unwrap_or(1);
            let line = repeat_line(text, from, key.trim_matches('"'));
            Err(InputError::new(
                file,
                format!("duplicate key {key}: each key may appear once in a mapping"),
            )
            .at(line.or(Some(from)), None))
        }
        // Other errors are reported by the typed decode, with the field path.
        _ => Ok(()),
    }
}

/// The line of the second `key:` at one indentation from line `from` on,
/// in block style; `None` in flow style (the caller keeps the mapping's line).
fn repeat_line(text: &str, from: usize, key: &str) -> Option<usize> {
    let mut first: Option<usize> = None;
    for (i, raw) in text.lines().enumerate().skip(from.saturating_sub(1)) {
        let (indent, body) = indent_and_body(raw);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if first.is_some_and(|f| indent < f) {
            return None;
        }
        let is_key = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .any(|k| body.starts_with(k.as_str()));
        if is_key {
            match first {
                Some(f) if f == indent => return Some(i + 1),
                Some(_) => {}
                None => first = Some(indent),
            }
        }
    }
    None
}

/// YAML indents with spaces only; the parser's message for a tab ("found
/// character that cannot start any token") does not say so.
fn explain_tab(text: &str, e: InputError) -> InputError {
    // The parser stops at the tab or on the line after it.
    let (from, upto) = match e.line {
        Some(l) => (l.saturating_sub(2), l),
        None => (0, usize::MAX),
    };
    let tab = text
        .lines()
        .enumerate()
        .take(upto)
        .skip(from)
        .find(|(_, l)| {
            let lead = &l[..l.len() - l.trim_start_matches([' ', '\t']).len()];
            lead.contains('\t')
        });
    match tab {
        Some((i, l)) => InputError::new(
            &e.file,
            "a tab in the indentation; YAML indents with spaces only",
        )
        .at(Some(i + 1), Some(l.find('\t').unwrap_or(0) + 1)),
        None => e,
    }
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
    fn depth_counts_brackets_outside_quotes_and_comments() {
        let f = Path::new("f.yaml");
        let deep = "[".repeat(65);
        assert!(check_shape(f, &format!("a: {deep}\n")).is_err());
        for ok in [
            format!("a: \"{deep}\"\n"),
            format!("a: '{deep}'\n"),
            format!("a: 1 # {deep}\n"),
            // An apostrophe inside a plain scalar opens no quote.
            "a: don't [1, [2]]\nb: [x]\n".to_string(),
        ] {
            assert!(check_shape(f, &ok).is_ok(), "{ok}");
        }
        assert!(check_shape(f, &format!("a: don't\nb: {deep}\n")).is_err());
    }

    #[test]
    fn a_duplicate_key_is_reported_at_the_repeat() {
        let text = "a: 1\nm:\n  x: 1\n  n:\n    x: 2\n  x: 3\n";
        let e = from_str::<serde_norway::Value>(Path::new("f.yaml"), text).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("duplicate key \"x\""), "{e}");
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
