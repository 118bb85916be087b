//! Tokenizer for metric math expressions: turns the expression text into tokens that carry
//! their 0-based character position, so parse errors can point at the offending spot the way
//! CloudWatch's messages do.

use super::MathError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Number(f64),
    /// A lowercase-first word: the id of another query (`m1`, `errors`), or a function name
    /// written in lowercase when followed by `(`.
    Ident(String),
    /// An uppercase-first word: a function name, a keyword argument (`REPEAT`, `DESC`), or
    /// one of the logical operators `AND`/`OR`/`NOT`.
    Word(String),
    Str(String),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    And,
    Or,
    Not,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// 0-based character offset of the token's first character.
    pub pos: usize,
}

fn unrecognized(pos: usize) -> MathError {
    MathError::new(format!("Unrecognized token at position {pos}"))
}

pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, MathError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two = |a: char, b: char| c == a && chars.get(i + 1) == Some(&b);
        let (tok, len) = if c.is_ascii_digit() || (c == '.' && next_is_digit(&chars, i + 1)) {
            let (value, len) = number(&chars, i).ok_or_else(|| unrecognized(pos))?;
            (Tok::Number(value), len)
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            let tok = match word.as_str() {
                "AND" => Tok::And,
                "OR" => Tok::Or,
                "NOT" => Tok::Not,
                _ if c.is_ascii_lowercase() => Tok::Ident(word),
                _ => Tok::Word(word),
            };
            (tok, j - i)
        } else if c == '"' || c == '\'' {
            let mut j = i + 1;
            let mut text = String::new();
            loop {
                match chars.get(j) {
                    None => {
                        return Err(MathError::new(format!(
                            "Syntax error: unterminated string starting at position {pos}"
                        )))
                    }
                    Some('\\') if chars.get(j + 1).is_some() => {
                        text.push(chars[j + 1]);
                        j += 2;
                    }
                    Some(&q) if q == c => break,
                    Some(&other) => {
                        text.push(other);
                        j += 1;
                    }
                }
            }
            (Tok::Str(text), j + 1 - i)
        } else if two('>', '=') {
            (Tok::Ge, 2)
        } else if two('<', '=') {
            (Tok::Le, 2)
        } else if two('=', '=') {
            (Tok::Eq, 2)
        } else if two('!', '=') {
            (Tok::Ne, 2)
        } else if two('&', '&') {
            (Tok::And, 2)
        } else if two('|', '|') {
            (Tok::Or, 2)
        } else {
            let tok = match c {
                '+' => Tok::Plus,
                '-' => Tok::Minus,
                '*' => Tok::Star,
                '/' => Tok::Slash,
                '^' => Tok::Caret,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                ',' => Tok::Comma,
                '>' => Tok::Gt,
                '<' => Tok::Lt,
                '!' => Tok::Not,
                _ => return Err(unrecognized(pos)),
            };
            (tok, 1)
        };
        out.push(Token { tok, pos });
        i += len;
    }
    Ok(out)
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i).is_some_and(|c| c.is_ascii_digit())
}

/// Reads `123`, `1.5`, `.5`, `1e-36`, `2E3`; returns the value and the characters consumed.
fn number(chars: &[char], start: usize) -> Option<(f64, usize)> {
    let mut j = start;
    while j < chars.len() && chars[j].is_ascii_digit() {
        j += 1;
    }
    if chars.get(j) == Some(&'.') {
        j += 1;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
    }
    if matches!(chars.get(j), Some('e' | 'E')) {
        let mut k = j + 1;
        if matches!(chars.get(k), Some('+' | '-')) {
            k += 1;
        }
        // Only an exponent when digits follow; otherwise `2e` is a number then a word, which
        // the parser rejects as a syntax error.
        if next_is_digit(chars, k) {
            while k < chars.len() && chars[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text: String = chars[start..j].iter().collect();
    text.parse::<f64>().ok().map(|v| (v, j - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_ids_and_operators() {
        assert_eq!(
            toks("m1 + 2.5*errors_total/1e-3 ^ .5"),
            vec![
                Tok::Ident("m1".into()),
                Tok::Plus,
                Tok::Number(2.5),
                Tok::Star,
                Tok::Ident("errors_total".into()),
                Tok::Slash,
                Tok::Number(1e-3),
                Tok::Caret,
                Tok::Number(0.5),
            ]
        );
    }

    #[test]
    fn comparisons_logic_and_strings() {
        assert_eq!(
            toks(r#"IF(m1 >= 1 AND m2 != 0 || NOT m3 <= 2, METRICS("cpu"), 'x')"#),
            vec![
                Tok::Word("IF".into()),
                Tok::LParen,
                Tok::Ident("m1".into()),
                Tok::Ge,
                Tok::Number(1.0),
                Tok::And,
                Tok::Ident("m2".into()),
                Tok::Ne,
                Tok::Number(0.0),
                Tok::Or,
                Tok::Not,
                Tok::Ident("m3".into()),
                Tok::Le,
                Tok::Number(2.0),
                Tok::Comma,
                Tok::Word("METRICS".into()),
                Tok::LParen,
                Tok::Str("cpu".into()),
                Tok::RParen,
                Tok::Comma,
                Tok::Str("x".into()),
                Tok::RParen,
            ]
        );
    }

    #[test]
    fn positions_are_zero_based() {
        let t = tokenize("m1 +  m2").unwrap();
        assert_eq!(t.iter().map(|t| t.pos).collect::<Vec<_>>(), vec![0, 3, 6]);
    }

    #[test]
    fn unrecognized_character() {
        assert_eq!(
            tokenize("m1 + $m2").unwrap_err().message,
            "Unrecognized token at position 5"
        );
        assert_eq!(
            tokenize("m1 = m2").unwrap_err().message,
            "Unrecognized token at position 3"
        );
    }

    #[test]
    fn unterminated_string() {
        assert!(tokenize("METRICS(\"abc")
            .unwrap_err()
            .message
            .starts_with("Syntax error"));
    }
}
