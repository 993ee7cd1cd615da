//! Label selectors: the string form used by `scale.status.selector` (`labels.Parse`),
//! validation of `metav1.LabelSelector` (`LabelSelectorAsSelector`), and Go's `%+v`
//! rendering of a `*LabelSelector`, which appears in metric names and messages.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector (conjunction of requirements). The empty selector matches all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Whether a label set satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.op {
                Op::In => value.is_some_and(|v| r.values.contains(v)),
                Op::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
                Op::Gt | Op::Lt => {
                    let (Some(v), Some(bound)) = (value, r.values.first()) else {
                        return false;
                    };
                    match (v.parse::<i64>(), bound.parse::<i64>()) {
                        (Ok(v), Ok(b)) => {
                            if r.op == Op::Gt {
                                v > b
                            } else {
                                v < b
                            }
                        }
                        _ => false,
                    }
                }
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Comma,
    Eq,
    DoubleEq,
    NotEq,
    Not,
    Gt,
    Lt,
    Open,
    Close,
    In,
    NotIn,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Comma => ",".into(),
            Token::Eq => "=".into(),
            Token::DoubleEq => "==".into(),
            Token::NotEq => "!=".into(),
            Token::Not => "!".into(),
            Token::Gt => "gt".into(),
            Token::Lt => "lt".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
        }
    }
}

fn tokenize(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '>' => {
                out.push(Token::Gt);
                i += 1;
            }
            '<' => {
                out.push(Token::Lt);
                i += 1;
            }
            '=' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push(Token::DoubleEq);
                    i += 2;
                } else {
                    out.push(Token::Eq);
                    i += 1;
                }
            }
            '!' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push(Token::NotEq);
                    i += 2;
                } else {
                    out.push(Token::Not);
                    i += 1;
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && !(chars[i].is_whitespace() || ",()<>=!".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Ident(word),
                });
            }
        }
    }
    out
}

fn invalid(value: &str, detail: &str) -> String {
    format!("unable to parse requirement: <nil>: Invalid value: {value:?}: {detail}")
}

fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 316
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            "name part must consist of alphanumeric characters, '-', '_' or '.'",
        ))
    }
}

/// `labels.Parse`: the string form of a selector, e.g. `app=web,tier in (a,b),!canary`.
/// Error texts follow upstream's shape.
pub fn parse_selector(s: &str) -> Result<Selector, String> {
    let tokens = tokenize(s);
    let mut reqs = Vec::new();
    let mut i = 0;
    let expected_op = |found: &Token| {
        let t = found.text();
        invalid(
            &t,
            &format!("found '{t}', expected: in, notin, =, ==, !=, gt, lt"),
        )
    };
    while i < tokens.len() {
        let negated = if tokens[i] == Token::Not {
            i += 1;
            true
        } else {
            false
        };
        let key = match tokens.get(i) {
            Some(Token::Ident(k)) => k.clone(),
            Some(t) => {
                let t = t.text();
                return Err(invalid(&t, &format!("found '{t}', expected: identifier")));
            }
            None => return Err(invalid("", "found '', expected: identifier")),
        };
        check_key(&key)?;
        i += 1;
        let at_end = matches!(tokens.get(i), None | Some(Token::Comma));
        if negated {
            if !at_end {
                return Err(expected_op(&tokens[i]));
            }
            reqs.push(Requirement {
                key,
                op: Op::DoesNotExist,
                values: vec![],
            });
        } else if at_end {
            reqs.push(Requirement {
                key,
                op: Op::Exists,
                values: vec![],
            });
        } else {
            let op_tok = tokens[i].clone();
            i += 1;
            let (op, values) = match op_tok {
                Token::Eq | Token::DoubleEq | Token::NotEq | Token::Gt | Token::Lt => {
                    // A single value, possibly empty (`a=` selects an empty label value).
                    let value = match tokens.get(i) {
                        Some(Token::Ident(v)) => {
                            i += 1;
                            v.clone()
                        }
                        Some(Token::Comma) | None => String::new(),
                        Some(t) => {
                            let t = t.text();
                            return Err(invalid(&t, &format!("found '{t}', expected: identifier")));
                        }
                    };
                    let op = match op_tok {
                        Token::Eq | Token::DoubleEq => Op::In,
                        Token::NotEq => Op::NotIn,
                        Token::Gt => Op::Gt,
                        _ => Op::Lt,
                    };
                    if matches!(op, Op::Gt | Op::Lt) && value.parse::<i64>().is_err() {
                        return Err(invalid(
                            &value,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                    (op, vec![value])
                }
                Token::In | Token::NotIn => {
                    if tokens.get(i) != Some(&Token::Open) {
                        let t = tokens.get(i).map(Token::text).unwrap_or_default();
                        return Err(invalid(&t, &format!("found '{t}', expected: '('")));
                    }
                    i += 1;
                    let mut values = Vec::new();
                    loop {
                        match tokens.get(i) {
                            Some(Token::Ident(v)) => {
                                values.push(v.clone());
                                i += 1;
                            }
                            Some(Token::Close) => {
                                i += 1;
                                break;
                            }
                            Some(Token::Comma) => i += 1,
                            other => {
                                let t = other.map(Token::text).unwrap_or_default();
                                return Err(invalid(
                                    &t,
                                    &format!("found '{t}', expected: ',' or ')'"),
                                ));
                            }
                        }
                    }
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let op = if op_tok == Token::In {
                        Op::In
                    } else {
                        Op::NotIn
                    };
                    (op, values)
                }
                other => return Err(expected_op(&other)),
            };
            reqs.push(Requirement { key, op, values });
        }
        match tokens.get(i) {
            None => {}
            Some(Token::Comma) => {
                i += 1;
                if i >= tokens.len() {
                    return Err(invalid("", "found '', expected: identifier after ','"));
                }
            }
            Some(t) => {
                let t = t.text();
                return Err(invalid(&t, &format!("found '{t}', expected: ','")));
            }
        }
    }
    Ok(Selector { requirements: reqs })
}

/// `metav1.LabelSelectorAsSelector`: `None` selects everything; invalid operators or value
/// lists are errors.
pub fn label_selector_as_selector(sel: Option<&LabelSelector>) -> Result<Selector, String> {
    let Some(sel) = sel else {
        return Ok(Selector::default());
    };
    let mut requirements = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        check_key(k)?;
        requirements.push(Requirement {
            key: k.clone(),
            op: Op::In,
            values: vec![v.clone()],
        });
    }
    for expr in sel.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default();
        let op = match expr.operator.as_str() {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        check_key(&expr.key)?;
        let needs_values = matches!(op, Op::In | Op::NotIn);
        if needs_values && values.is_empty() {
            return Err("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty".to_string());
        }
        if !needs_values && !values.is_empty() {
            return Err(format!("values: Invalid value: {values:?}: values set must be empty for exists and does not exist"));
        }
        requirements.push(Requirement {
            key: expr.key.clone(),
            op,
            values,
        });
    }
    Ok(Selector { requirements })
}

/// Go's `fmt.Sprintf("%+v", sel)` for a `*metav1.LabelSelector` (gogo-protobuf `String()`):
/// `nil`, or
/// `&LabelSelector{MatchLabels:map[string]string{k: v,},MatchExpressions:[]LabelSelectorRequirement{},}`.
pub fn format_label_selector(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else {
        return "nil".to_string();
    };
    let mut labels = String::from("map[string]string{");
    // BTreeMap iteration is already sorted by key, as the generated code sorts keys.
    for (k, v) in sel.match_labels.iter().flatten() {
        labels.push_str(&format!("{k}: {v},"));
    }
    labels.push('}');
    let mut exprs = String::from("[]LabelSelectorRequirement{");
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(" ");
        exprs.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            e.key, e.operator, values
        ));
    }
    exprs.push('}');
    format!("&LabelSelector{{MatchLabels:{labels},MatchExpressions:{exprs},}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches() {
        let s = parse_selector("name=test-pod, tier in (a,b),!canary,env!=prod").unwrap();
        assert!(s.matches(&labels(&[("name", "test-pod"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("name", "test-pod"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[
            ("name", "test-pod"),
            ("tier", "a"),
            ("canary", "")
        ])));
        assert!(!s.matches(&labels(&[
            ("name", "test-pod"),
            ("tier", "a"),
            ("env", "prod")
        ])));
    }

    #[test]
    fn rejects_unparsable() {
        let err = parse_selector("cheddar cheese").unwrap_err();
        assert!(err.contains("found 'cheese'"), "{err}");
        assert!(parse_selector("a in b").is_err());
        assert!(parse_selector("a=b,").is_err());
        assert!(parse_selector("(").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_label_selector(None), "nil");
        let sel = LabelSelector {
            match_labels: Some(labels(&[("route", "default-httpbin-svc-8080")])),
            match_expressions: None,
        };
        assert_eq!(
            format_label_selector(Some(&sel)),
            "&LabelSelector{MatchLabels:map[string]string{route: default-httpbin-svc-8080,},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert_eq!(
            format_label_selector(Some(&sel)),
            "&LabelSelector{MatchLabels:map[string]string{},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[a b],},},}"
        );
    }

    #[test]
    fn validates_label_selector() {
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "Near".into(),
                values: None,
            }]),
        };
        assert!(label_selector_as_selector(Some(&bad)).is_err());
        assert!(label_selector_as_selector(None).is_ok());
    }
}
