//! Minimal `resource.Quantity` handling: parse to milli-units / f64, format milli-units.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Why a quantity string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}")]
    Syntax(String),
    #[error("unable to parse quantity's suffix: {0:?}")]
    Suffix(String),
}

/// Parsed form: `sign * digits * 10^exp10 * 1024^pow1024`.
struct Parsed {
    negative: bool,
    digits: String,
    exp10: i64,
    pow1024: u32,
}

fn parse(input: &str) -> Result<Parsed, QuantityError> {
    let s = input.trim();
    let syntax = || QuantityError::Syntax(input.to_string());
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
        negative = bytes[i] == b'-';
        i += 1;
    }
    let mut int_part = String::new();
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        int_part.push(bytes[i] as char);
        i += 1;
    }
    let mut frac_part = String::new();
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            frac_part.push(bytes[i] as char);
            i += 1;
        }
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(syntax());
    }
    let suffix = &s[i..];
    let (exp10, pow1024): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 1),
        "Mi" => (0, 2),
        "Gi" => (0, 3),
        "Ti" => (0, 4),
        "Pi" => (0, 5),
        "Ei" => (0, 6),
        _ if suffix.starts_with(['e', 'E']) => {
            let e: i64 = suffix[1..]
                .parse()
                .map_err(|_| QuantityError::Suffix(suffix.to_string()))?;
            (e, 0)
        }
        _ => return Err(QuantityError::Suffix(suffix.to_string())),
    };
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0').to_string();
    Ok(Parsed {
        negative,
        digits,
        exp10: exp10.saturating_sub(frac_part.len() as i64),
        pow1024,
    })
}

/// `Quantity::MilliValue()`: the value in milli-units, rounded up; saturates at the `i64`
/// range instead of overflowing. Accepts `m`, `k`, `M`, `G`, ..., `Ki`, `Mi`, `Gi`, ...,
/// plain numbers, decimals and `e`/`E` exponents.
pub fn parse_quantity_milli(q: &str) -> Result<i64, QuantityError> {
    let p = parse(q)?;
    if p.digits.is_empty() {
        return Ok(0);
    }
    let saturated = if p.negative { i64::MIN } else { i64::MAX };
    // More than 38 significant digits cannot fit any i64 milli value anyway.
    let Ok(mut v) = p.digits.parse::<i128>() else {
        return Ok(saturated);
    };
    for _ in 0..p.pow1024 {
        match v.checked_mul(1024) {
            Some(x) => v = x,
            None => return Ok(saturated),
        }
    }
    let exp = p.exp10.saturating_add(3);
    if exp >= 0 {
        for _ in 0..exp.min(40) {
            match v.checked_mul(10) {
                Some(x) => v = x,
                None => return Ok(saturated),
            }
        }
    } else {
        // Dividing truncates the magnitude; MilliValue rounds toward +inf, so a positive
        // value with a remainder goes up by one and a negative one keeps the truncation.
        let mut div: Option<i128> = Some(1);
        for _ in 0..exp.unsigned_abs().min(60) {
            div = div.and_then(|d| d.checked_mul(10));
        }
        let (quot, rem) = match div {
            Some(d) => (v / d, v % d),
            None => (0, v),
        };
        v = if !p.negative && rem != 0 {
            quot + 1
        } else {
            quot
        };
    }
    let v = if p.negative { -v } else { v };
    Ok(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// `Quantity::AsApproximateFloat64()`.
pub fn parse_quantity_f64(q: &str) -> Result<f64, QuantityError> {
    let p = parse(q)?;
    if p.digits.is_empty() {
        return Ok(0.0);
    }
    let base: f64 = format!("{}e{}", p.digits, p.exp10)
        .parse()
        .unwrap_or(f64::NAN);
    let v = base * 1024f64.powi(p.pow1024 as i32);
    Ok(if p.negative { -v } else { v })
}

/// `resource.NewMilliQuantity(milli, DecimalSI)` in its canonical string form
/// (`6666m`, `20`, `3k`).
pub fn milli_to_quantity(milli: i64) -> Quantity {
    Quantity(format_decimal(milli))
}

/// `resource.NewMilliQuantity(milli, BinarySI)` (memory): whole byte counts use `Ki`/`Mi`/...
/// suffixes; fractional values fall back to the decimal form like upstream.
pub fn milli_to_quantity_binary(milli: i64) -> Quantity {
    if milli % 1000 != 0 {
        return Quantity(format_decimal(milli));
    }
    let mut v = milli / 1000;
    if v == 0 {
        return Quantity("0".to_string());
    }
    let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut idx = 0;
    while idx + 1 < suffixes.len() && v % 1024 == 0 {
        v /= 1024;
        idx += 1;
    }
    Quantity(format!("{v}{}", suffixes[idx]))
}

fn format_decimal(milli: i64) -> String {
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let mut v = milli / 1000;
    if v == 0 {
        return "0".to_string();
    }
    let suffixes = ["", "k", "M", "G", "T", "P", "E"];
    let mut idx = 0;
    while idx + 1 < suffixes.len() && v % 1000 == 0 {
        v /= 1000;
        idx += 1;
    }
    format!("{v}{}", suffixes[idx])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_quantity_milli("500m"), Ok(500));
        assert_eq!(parse_quantity_milli("1"), Ok(1000));
        assert_eq!(parse_quantity_milli("1.5"), Ok(1500));
        assert_eq!(parse_quantity_milli("2k"), Ok(2_000_000));
        assert_eq!(parse_quantity_milli("1Ki"), Ok(1_024_000));
        assert_eq!(parse_quantity_milli("1Mi"), Ok(1_048_576_000));
        assert_eq!(parse_quantity_milli("1e3"), Ok(1_000_000));
        assert_eq!(
            parse_quantity_milli("0.0001"),
            Ok(1),
            "MilliValue rounds up"
        );
        assert_eq!(parse_quantity_milli("-1.5"), Ok(-1500));
        assert_eq!(parse_quantity_milli("100n"), Ok(1));
        assert_eq!(parse_quantity_milli(".5"), Ok(500));
        assert_eq!(parse_quantity_milli("9E"), Ok(i64::MAX), "saturates");
        assert_eq!(parse_quantity_milli("1e-9223372036854775808"), Ok(1));
        assert_eq!(parse_quantity_milli("1e9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_quantity_milli(&"9".repeat(100)), Ok(i64::MAX));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for s in ["", "abc", "1x", "1e", "--1", ".", "1.2.3", "1Kix"] {
            assert!(parse_quantity_milli(s).is_err(), "{s}");
        }
    }

    #[test]
    fn float_and_format() {
        assert_eq!(parse_quantity_f64("0.05"), Ok(0.05));
        assert_eq!(parse_quantity_f64("50m"), Ok(0.05));
        assert_eq!(milli_to_quantity(6666).0, "6666m");
        assert_eq!(milli_to_quantity(20000).0, "20");
        assert_eq!(milli_to_quantity(3_000_000).0, "3k");
        assert_eq!(milli_to_quantity(0).0, "0");
        assert_eq!(milli_to_quantity_binary(1_048_576_000).0, "1Mi");
        assert_eq!(milli_to_quantity_binary(1500).0, "1500m");
    }
}
