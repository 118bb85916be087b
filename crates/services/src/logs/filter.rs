//! CloudWatch Logs filter patterns for unstructured events (pure): space-separated terms
//! that must all appear (`ERROR Exception`), `"quoted phrases"`, `?term` alternatives (any
//! one suffices) and `-term` exclusions. Matching is case-sensitive, as in AWS. JSON and
//! space-delimited patterns (`{ $.x = 1 }`, `[ip, user, …]`) are refused, not misread.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterPattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('%') {
            return Err("Invalid filter pattern: JSON, space-delimited and regular-expression patterns are not supported by sparkyard.".into());
        }
        let mut out = Self::default();
        let mut chars = trimmed.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let mut prefix = None;
            if c == '?' || c == '-' {
                prefix = Some(c);
                chars.next();
            }
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    term.push(c);
                }
                if !closed {
                    return Err("Invalid filter pattern: unterminated quoted term.".into());
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    term.push(c);
                    chars.next();
                }
            }
            if term.is_empty() {
                continue;
            }
            match prefix {
                Some('?') => out.any.push(term),
                Some('-') => out.none.push(term),
                _ => out.all.push(term),
            }
        }
        Ok(out)
    }

    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms() {
        let p = FilterPattern::parse("ERROR Exception").unwrap();
        assert!(p.matches("ERROR: NullPointerException at x"));
        assert!(!p.matches("ERROR: fine"));
        assert!(!p.matches("error exception"), "case-sensitive");
        let p = FilterPattern::parse("\"Pi is roughly\"").unwrap();
        assert!(p.matches("Pi is roughly 3.14"));
        assert!(!p.matches("Pi is about 3"));
        let p = FilterPattern::parse("?WARN ?ERROR -heartbeat").unwrap();
        assert!(p.matches("WARN disk"));
        assert!(!p.matches("ERROR heartbeat"));
        assert!(!p.matches("INFO ok"));
        assert!(FilterPattern::parse("").unwrap().matches("anything"));
        assert!(FilterPattern::parse("{ $.level = \"x\" }").is_err());
    }
}
