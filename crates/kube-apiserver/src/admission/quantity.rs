//! Resource quantities with apimachinery's arithmetic and canonical printing, for the
//! admission plugins that add, compare and *print* them (LimitRanger, ResourceQuota).
//!
//! `sparkyard-scheduling` parses quantities into integers; quota messages and
//! `status.used` also need `Quantity.String()`: `1500m`, `2`, `1Gi`, `1536Mi`, `1k`. A value
//! is kept exactly in nano-units (i128) with the format its text had — `BinarySI` for
//! `Ki`…`Ei`, `DecimalExponent` for `e3`, `DecimalSI` otherwise — and a sum keeps the format
//! of its first non-zero operand, as `Quantity.Add` does.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

const NANO: i128 = 1_000_000_000;

/// apimachinery's parse error text (`quantities must match the regular expression …`).
pub const QUANTITY_REGEX_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    /// The value in units of 10⁻⁹, rounded up below that (apimachinery's nano floor).
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::zero()
    }
}

fn pow(base: i128, exp: u32) -> Option<i128> {
    base.checked_pow(exp)
}

impl Quantity {
    pub const fn zero() -> Quantity {
        Quantity {
            nanos: 0,
            format: Format::DecimalSI,
        }
    }

    /// A whole number in `DecimalSI` (object counts).
    pub const fn count(n: i64) -> Quantity {
        Quantity {
            nanos: n as i128 * NANO,
            format: Format::DecimalSI,
        }
    }

    /// Parses a quantity's text; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Quantity> {
        let t = text.trim();
        let (negative, body) = match t.as_bytes().first()? {
            b'-' => (true, &t[1..]),
            b'+' => (false, &t[1..]),
            _ => (false, t),
        };
        let end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(end);
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return None;
        }
        let digits: i128 = format!("{int}{frac}").parse().ok()?;
        // value = digits × 10^(exp10 - frac.len()) × 2^exp2
        let (exp10, exp2, format): (i32, u32, Format) = match suffix {
            "" => (0, 0, Format::DecimalSI),
            "n" => (-9, 0, Format::DecimalSI),
            "u" => (-6, 0, Format::DecimalSI),
            "m" => (-3, 0, Format::DecimalSI),
            "k" => (3, 0, Format::DecimalSI),
            "M" => (6, 0, Format::DecimalSI),
            "G" => (9, 0, Format::DecimalSI),
            "T" => (12, 0, Format::DecimalSI),
            "P" => (15, 0, Format::DecimalSI),
            "E" => (18, 0, Format::DecimalSI),
            "Ki" => (0, 10, Format::BinarySI),
            "Mi" => (0, 20, Format::BinarySI),
            "Gi" => (0, 30, Format::BinarySI),
            "Ti" => (0, 40, Format::BinarySI),
            "Pi" => (0, 50, Format::BinarySI),
            "Ei" => (0, 60, Format::BinarySI),
            s if s.starts_with(['e', 'E']) => {
                let e: i32 = s[1..].parse().ok()?;
                (e, 0, Format::DecimalExponent)
            }
            _ => return None,
        };
        let scale = exp10 - frac.len() as i32 + 9;
        let mut value = digits.checked_mul(pow(2, exp2)?)?;
        if scale >= 0 {
            value = value.checked_mul(pow(10, scale as u32)?)?;
        } else {
            let div = pow(10, (-scale) as u32).unwrap_or(i128::MAX);
            // Below a nano-unit, round up (away from zero), as apimachinery does.
            value = value / div + i128::from(value % div != 0);
        }
        Some(Quantity {
            nanos: if negative { -value } else { value },
            format,
        })
    }

    /// A quantity from JSON: a string, or a number (YAML's `cpu: 2`).
    pub fn from_json(value: &Value) -> Option<Quantity> {
        match value {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// `Quantity.Add`: the receiver's format wins unless it is zero.
    pub fn add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: if self.is_zero() {
                other.format
            } else {
                self.format
            },
        }
    }

    pub fn sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: self.format,
        }
    }

    /// `MilliValue()`: thousandths, rounded up.
    pub fn milli_value(&self) -> i128 {
        let d = NANO / 1000;
        self.nanos.div_euclid(d) + i128::from(self.nanos.rem_euclid(d) != 0)
    }

    /// `Value()`: whole units, rounded up.
    pub fn value(&self) -> i128 {
        self.nanos.div_euclid(NANO) + i128::from(self.nanos.rem_euclid(NANO) != 0)
    }

    /// The canonical text, `Quantity.String()`.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".into();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs() as i128;
        let mut format = self.format;
        if format == Format::BinarySI && (abs < 1024 * NANO || abs % NANO != 0) {
            // Small or fractional binary quantities print in decimal SI, losing nothing.
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let mut n = abs / NANO;
            let mut power = 0;
            while n % 1024 == 0 && power < 6 {
                n /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return format!("{sign}{n}{suffix}");
        }
        // Decimal: strip factors of ten, then lower the exponent to a multiple of three.
        let mut mantissa = abs;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        while exponent.rem_euclid(3) != 0 {
            mantissa *= 10;
            exponent -= 1;
        }
        let suffix = match (format, exponent) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{sign}{mantissa}{suffix}")
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn canonical_forms_are_apimachinerys() {
        for (text, canonical) in [
            ("2", "2"),
            ("2000m", "2"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512Mi", "512Mi"),
            ("100Ki", "100Ki"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("0", "0"),
            ("0.1", "100m"),
            ("1G", "1G"),
            ("-1", "-1"),
        ] {
            assert_eq!(q(text).canonical(), canonical, "{text}");
        }
        for bad in ["", "abc", "1.2.3", "1K", "Gi", "1Gb"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            Quantity::from_json(&serde_json::json!(4))
                .unwrap()
                .canonical(),
            "4"
        );
    }

    #[test]
    fn sums_keep_the_first_operands_format() {
        assert_eq!(q("512Mi").add(&q("512Mi")).canonical(), "1Gi");
        assert_eq!(q("1").add(&q("500m")).canonical(), "1500m");
        assert_eq!(Quantity::zero().add(&q("1Gi")).canonical(), "1Gi");
        assert_eq!(q("1Gi").add(&q("1000")).canonical(), "1073742824");
        assert!(q("1") > q("999m"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1.0001m").milli_value(), 2);
        assert_eq!(q("100m").value(), 1);
    }
}
