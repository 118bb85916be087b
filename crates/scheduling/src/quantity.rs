//! Kubernetes resource quantities (`500m`, `1.5`, `32Gi`, `2G`, `1e3`) as exact integers.
//!
//! k8s-openapi's `Quantity` is only the string, so the scheduler parses it here. The
//! grammar is apimachinery's: an optionally signed decimal number followed by a binary SI
//! suffix (`Ki` … `Ei`), a decimal SI suffix (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`)
//! or a decimal exponent (`e3`, `E-2`). Values are computed exactly (i128 rationals) and
//! rounded *up*, as `Quantity.MilliValue()` / `Quantity.Value()` do, so `0.5m` CPU is 1
//! millicore and `100m` of memory is 1 byte.

use std::fmt;

/// Why a text is not a quantity (or does not fit in an `i64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    pub text: String,
    pub why: &'static str,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quantity {:?} {}", self.text, self.why)
    }
}

impl std::error::Error for QuantityError {}

/// A parsed quantity: `digits × 10^exp10 × 2^exp2`, kept exact until it is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exact {
    negative: bool,
    digits: i128,
    exp10: i32,
    exp2: u32,
}

fn error(text: &str, why: &'static str) -> QuantityError {
    QuantityError {
        text: text.to_string(),
        why,
    }
}

fn parse_exact(text: &str) -> Result<Exact, QuantityError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(error(text, "is empty"));
    }
    let (negative, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let number_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(error(text, "has no digits"));
    }
    if frac.contains('.') {
        return Err(error(text, "has two decimal points"));
    }
    let (exp10, exp2): (i32, u32) = match suffix {
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
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => {
            let exponent: i32 = s[1..]
                .parse()
                .map_err(|_| error(text, "has a bad exponent"))?;
            if !(-100..=100).contains(&exponent) {
                return Err(error(text, "is out of range"));
            }
            (exponent, 0)
        }
        _ => return Err(error(text, "has an unknown suffix")),
    };
    // Leading zeros carry no value; trailing fraction digits shift the exponent.
    let all_digits = format!("{int}{frac}");
    let significant = all_digits.trim_start_matches('0');
    if significant.len() > 30 {
        return Err(error(text, "is out of range"));
    }
    let digits: i128 = if significant.is_empty() {
        0
    } else {
        significant
            .parse()
            .map_err(|_| error(text, "is not a number"))?
    };
    Ok(Exact {
        negative,
        digits,
        exp10: exp10 - frac.len() as i32,
        exp2,
    })
}

/// `ceil(value × 10^scale)` as an i64, with the sign applied after rounding the magnitude up.
fn scaled(text: &str, scale: i32) -> Result<i64, QuantityError> {
    let q = parse_exact(text)?;
    let range = || error(text, "is out of range");
    let mut num = q
        .digits
        .checked_mul(1i128.checked_shl(q.exp2).ok_or_else(range)?)
        .ok_or_else(range)?;
    let exp = q.exp10 + scale;
    let magnitude = if exp >= 0 {
        num = num
            .checked_mul(10i128.checked_pow(exp as u32).ok_or_else(range)?)
            .ok_or_else(range)?;
        num
    } else {
        match 10i128.checked_pow((-exp) as u32) {
            Some(den) => (num + den - 1) / den,
            // More than 38 decimal places below the unit: any non-zero value rounds up to 1.
            None => i128::from(num > 0),
        }
    };
    let value = i64::try_from(magnitude).map_err(|_| range())?;
    Ok(if q.negative { -value } else { value })
}

/// CPU in millicores (`Quantity.MilliValue()`): `"500m"` → 500, `"2"` → 2000, `"0.1"` → 100.
pub fn millis(text: &str) -> Result<i64, QuantityError> {
    scaled(text, 3)
}

/// Memory, storage and counts in whole units (`Quantity.Value()`): `"32Gi"` → 34359738368.
pub fn units(text: &str) -> Result<i64, QuantityError> {
    scaled(text, 0)
}

/// The text of a quantity in JSON: a string, or (leniently, as kubectl-generated objects
/// sometimes carry them) a bare number.
pub fn json_text(value: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        serde_json::Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        serde_json::Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(millis("500m"), Ok(500));
        assert_eq!(millis("7910m"), Ok(7910));
        assert_eq!(millis("8"), Ok(8000));
        assert_eq!(millis("1.5"), Ok(1500));
        assert_eq!(millis("0.1"), Ok(100));
        assert_eq!(millis(".5"), Ok(500));
        assert_eq!(millis("0.5m"), Ok(1), "rounds up like MilliValue");
        assert_eq!(millis("100u"), Ok(1));
        assert_eq!(millis("250000n"), Ok(1));
        assert_eq!(millis("1e3"), Ok(1_000_000));
        assert_eq!(millis("1E-3"), Ok(1));
        assert_eq!(millis("+2"), Ok(2000));
        assert_eq!(millis("-1"), Ok(-1000));
        assert_eq!(millis("1k"), Ok(1_000_000));
    }

    #[test]
    fn memory_in_bytes() {
        assert_eq!(units("32Gi"), Ok(32 << 30));
        assert_eq!(units("31482328Ki"), Ok(31_482_328 * 1024));
        assert_eq!(units("2432Mi"), Ok(2432 << 20));
        assert_eq!(units("2G"), Ok(2_000_000_000));
        assert_eq!(units("1.5Gi"), Ok(3 << 29));
        assert_eq!(units("1Ti"), Ok(1 << 40));
        assert_eq!(units("1T"), Ok(1_000_000_000_000));
        assert_eq!(units("128974848"), Ok(128_974_848));
        assert_eq!(units("129e6"), Ok(129_000_000));
        assert_eq!(units("123M"), Ok(123_000_000));
        assert_eq!(units("1k"), Ok(1000));
        assert_eq!(units("100m"), Ok(1), "a tenth of a byte rounds up");
        assert_eq!(units("0"), Ok(0));
        assert_eq!(units("0.000Gi"), Ok(0));
        assert_eq!(units("1E"), Ok(1_000_000_000_000_000_000), "E alone is exa");
        assert_eq!(units("1Ei"), Ok(1 << 60));
    }

    #[test]
    fn rejects_garbage_and_overflow() {
        for bad in [
            "", " ", "abc", "1x", "1KI", "Gi", "1.2.3", "1e", "1ex", "--1", "1 Gi", "9Ei0",
        ] {
            assert!(units(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(units("16Ei").is_err(), "above i64");
        assert!(millis("10E").is_err(), "10^19 millis is above i64");
    }

    #[test]
    fn json_numbers_are_accepted() {
        assert_eq!(json_text(&serde_json::json!("1Gi")).as_deref(), Some("1Gi"));
        assert_eq!(json_text(&serde_json::json!(2)).as_deref(), Some("2"));
        assert_eq!(json_text(&serde_json::json!(0.5)).as_deref(), Some("0.5"));
        assert_eq!(json_text(&serde_json::json!(null)), None);
    }
}
