//! Kubernetes resource quantities (`100m`, `1.5`, `896Mi`, `1e3`), as integers.

/// A quantity in thousandths of its unit, rounded up (so `100m` CPU is 100, `1Ki` is
/// 1_024_000). `None` when the text is not a quantity.
pub fn parse_milli(text: &str) -> Option<i128> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (mantissa, scale_milli): (&str, Scale) = match suffix {
        "" => (number, Scale::Pow10(3)),
        "n" => (number, Scale::Pow10(-6)),
        "u" => (number, Scale::Pow10(-3)),
        "m" => (number, Scale::Pow10(0)),
        "k" => (number, Scale::Pow10(6)),
        "M" => (number, Scale::Pow10(9)),
        "G" => (number, Scale::Pow10(12)),
        "T" => (number, Scale::Pow10(15)),
        "P" => (number, Scale::Pow10(18)),
        "E" => (number, Scale::Pow10(21)),
        "Ki" => (number, Scale::Pow2(10)),
        "Mi" => (number, Scale::Pow2(20)),
        "Gi" => (number, Scale::Pow2(30)),
        "Ti" => (number, Scale::Pow2(40)),
        "Pi" => (number, Scale::Pow2(50)),
        "Ei" => (number, Scale::Pow2(60)),
        s if s.starts_with(['e', 'E']) => (number, Scale::Pow10(3 + s[1..].parse::<i32>().ok()?)),
        _ => return None,
    };
    let negative = mantissa.starts_with('-');
    let mantissa = mantissa.trim_start_matches(['+', '-']);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // value = digits / 10^frac_len * scale, computed exactly then rounded up.
    let digits: i128 = format!("{int}{frac}")
        .trim_start_matches('0')
        .parse()
        .unwrap_or(0);
    let frac_len = frac.len() as i32;
    let (mut num, mut den): (i128, i128) = (digits, 1);
    match scale_milli {
        Scale::Pow10(p) => {
            let p = p - frac_len;
            if p >= 0 {
                num = num.checked_mul(10i128.checked_pow(p as u32)?)?;
            } else {
                den = 10i128.checked_pow((-p) as u32)?;
            }
        }
        Scale::Pow2(p) => {
            num = num.checked_mul(1i128 << p)?.checked_mul(1000)?;
            den = 10i128.checked_pow(frac_len as u32)?;
        }
    }
    let value = (num + den - 1) / den;
    Some(if negative { -value } else { value })
}

enum Scale {
    Pow10(i32),
    Pow2(u32),
}

/// CPU in millicores.
pub fn cpu_millis(text: &str) -> Option<i64> {
    parse_milli(text).map(|m| m as i64)
}

/// Memory (or any count) in whole units, rounded up.
pub fn units(text: &str) -> Option<i64> {
    parse_milli(text).map(|m| ((m + 999).div_euclid(1000)) as i64)
}

/// A JSON quantity value: a string, or (leniently) a number.
pub fn value_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_memory() {
        assert_eq!(cpu_millis("100m"), Some(100));
        assert_eq!(cpu_millis("1"), Some(1000));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(cpu_millis("0.1"), Some(100));
        assert_eq!(units("896Mi"), Some(896 * 1024 * 1024));
        assert_eq!(units("32Gi"), Some(32 << 30));
        assert_eq!(units("1G"), Some(1_000_000_000));
        assert_eq!(units("1e3"), Some(1000));
        assert_eq!(units("1.5Gi"), Some(3 << 29));
        assert_eq!(units("512m"), Some(1)); // half a byte rounds up
        assert_eq!(cpu_millis("abc"), None);
        assert_eq!(cpu_millis("1x"), None);
        assert_eq!(cpu_millis(""), None);
    }
}
