//! Recursive-descent parser from tokens to the expression tree. Precedence, lowest first:
//! `OR`, `AND`, `NOT` (as in SQL: `NOT m1 > 2` is `NOT (m1 > 2)`), comparisons, `+ -`,
//! `* /`, unary `-`, `^` (right-associative, so `-2^2` is `-(2^2)` and `2^-1` parses).
//! Function names, arities and keyword arguments are checked here so a bad expression fails
//! at parse time, before the service reads any metric data.

use super::functions::{arity, Arity};
use super::lexer::{tokenize, Tok, Token};
use super::MathError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Number(f64),
    /// A string argument: `METRICS("errors")`.
    Str(String),
    /// Another query's id.
    Id(String),
    /// A bare uppercase word passed as an argument: `REPEAT`, `LINEAR`, `DESC`, `AVG`.
    Keyword(String),
    Array(Vec<Node>),
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    /// `name` is uppercase.
    Call {
        name: String,
        args: Vec<Node>,
    },
}

impl Node {
    /// Visits this node and every node below it, parents first, arguments left to right.
    pub(crate) fn walk(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        match self {
            Node::Array(items) | Node::Call { args: items, .. } => {
                items.iter().for_each(|n| n.walk(f))
            }
            Node::Neg(n) | Node::Not(n) => n.walk(f),
            Node::Binary(_, l, r) => {
                l.walk(f);
                r.walk(f);
            }
            Node::Number(_) | Node::Str(_) | Node::Id(_) | Node::Keyword(_) => {}
        }
    }
}

pub(crate) fn parse(input: &str) -> Result<Node, MathError> {
    let trimmed = input.trim_start();
    if trimmed.len() >= 7 && trimmed[..7].eq_ignore_ascii_case("SELECT ") {
        return Err(MathError::new(
            "Metrics Insights queries (SELECT) are not supported",
        ));
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(MathError::new("Syntax error: the expression is empty"));
    }
    let mut p = Parser {
        tokens,
        i: 0,
        end: input.chars().count(),
    };
    let node = p.expr()?;
    match p.tokens.get(p.i) {
        None => Ok(node),
        Some(t) => Err(syntax(t.pos)),
    }
}

fn syntax(pos: usize) -> MathError {
    MathError::new(format!("Syntax error at position {pos}"))
}

fn unrecognized_word(word: &str, pos: usize) -> MathError {
    MathError::new(format!(
        "Unrecognized identifier {word} at position {pos}; ids must start with a lowercase letter"
    ))
}

/// Bare uppercase words are arguments of only a few functions: `FILL(m1, REPEAT|LINEAR)`,
/// `SORT(x, AVG|MIN|MAX|SUM|STDDEV, ASC|DESC)`.
fn keyword_allowed(function: &str, index: usize, word: &str) -> bool {
    match (function, index) {
        ("FILL", 1) => matches!(word, "REPEAT" | "LINEAR"),
        ("SORT", 1) => matches!(word, "AVG" | "MIN" | "MAX" | "SUM" | "STDDEV"),
        ("SORT", 2) => matches!(word, "ASC" | "DESC"),
        _ => false,
    }
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    /// Length of the input in characters: the position reported for "ran out of tokens".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.i).map(|t| &t.tok)
    }

    fn peek_at(&self, offset: usize) -> Option<&Tok> {
        self.tokens.get(self.i + offset).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.tokens.get(self.i).map_or(self.end, |t| t.pos)
    }

    fn next(&mut self) -> Result<Token, MathError> {
        let t = self.tokens.get(self.i).cloned().ok_or(syntax(self.end))?;
        self.i += 1;
        Ok(t)
    }

    fn expect(&mut self, tok: Tok) -> Result<(), MathError> {
        if self.peek() == Some(&tok) {
            self.i += 1;
            Ok(())
        } else {
            Err(syntax(self.pos()))
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Node, MathError> {
        self.or()
    }

    fn or(&mut self) -> Result<Node, MathError> {
        let mut left = self.and()?;
        while self.eat(&Tok::Or) {
            let right = self.and()?;
            left = Node::Binary(BinOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, MathError> {
        let mut left = self.not()?;
        while self.eat(&Tok::And) {
            let right = self.not()?;
            left = Node::Binary(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, MathError> {
        if self.eat(&Tok::Not) {
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, MathError> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Gt) => BinOp::Gt,
                Some(Tok::Ge) => BinOp::Ge,
                Some(Tok::Lt) => BinOp::Lt,
                Some(Tok::Le) => BinOp::Le,
                Some(Tok::Eq) => BinOp::Eq,
                Some(Tok::Ne) => BinOp::Ne,
                _ => return Ok(left),
            };
            self.i += 1;
            let right = self.additive()?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn additive(&mut self) -> Result<Node, MathError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => BinOp::Add,
                Some(Tok::Minus) => BinOp::Sub,
                _ => return Ok(left),
            };
            self.i += 1;
            let right = self.multiplicative()?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Node, MathError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Star) => BinOp::Mul,
                Some(Tok::Slash) => BinOp::Div,
                _ => return Ok(left),
            };
            self.i += 1;
            let right = self.unary()?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Node, MathError> {
        match self.peek() {
            Some(Tok::Minus) => {
                self.i += 1;
                // Fold `-3` into a literal so `[-1, 2]` and `FILL(m1, -1)` stay plain numbers.
                match self.unary()? {
                    Node::Number(n) => Ok(Node::Number(-n)),
                    other => Ok(Node::Neg(Box::new(other))),
                }
            }
            Some(Tok::Plus) => {
                self.i += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Node, MathError> {
        let base = self.primary()?;
        if self.eat(&Tok::Caret) {
            let exponent = self.unary()?;
            return Ok(Node::Binary(BinOp::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Node, MathError> {
        let start = self.pos();
        let token = self.next()?;
        match token.tok {
            Tok::Number(n) => Ok(Node::Number(n)),
            Tok::LParen => {
                let inner = self.expr()?;
                self.expect(Tok::RParen)?;
                Ok(inner)
            }
            Tok::LBracket => {
                let mut items = vec![self.expr()?];
                while self.eat(&Tok::Comma) {
                    items.push(self.expr()?);
                }
                self.expect(Tok::RBracket)?;
                Ok(Node::Array(items))
            }
            Tok::Ident(name) if self.peek() == Some(&Tok::LParen) => self.call(&name, start),
            Tok::Ident(id) => Ok(Node::Id(id)),
            Tok::Word(name) if self.peek() == Some(&Tok::LParen) => self.call(&name, start),
            Tok::Word(word) => Err(unrecognized_word(&word, start)),
            _ => Err(syntax(start)),
        }
    }

    /// After a function name, with `(` next.
    fn call(&mut self, name: &str, start: usize) -> Result<Node, MathError> {
        let upper = name.to_ascii_uppercase();
        let (min, max) = match arity(&upper) {
            Arity::Args(min, max) => (min, max),
            Arity::Unsupported => {
                return Err(MathError::new(format!(
                    "Function {upper} is not supported by sparkyard"
                )))
            }
            Arity::Unknown => {
                return Err(MathError::new(format!(
                    "Unknown function {name} at position {start}"
                )))
            }
        };
        self.expect(Tok::LParen)?;
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                let pos = self.pos();
                let arg = self.argument()?;
                if let Node::Keyword(word) = &arg {
                    if !keyword_allowed(&upper, args.len(), word) {
                        return Err(unrecognized_word(word, pos));
                    }
                }
                args.push(arg);
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(Tok::Comma)?;
            }
        }
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(MathError::new(format!(
                "Invalid number of arguments for function {upper}: expected {expected}, got {}",
                args.len()
            )));
        }
        Ok(Node::Call { name: upper, args })
    }

    /// A function argument: a string, a bare keyword (`REPEAT`), or any expression.
    fn argument(&mut self) -> Result<Node, MathError> {
        let closes = matches!(self.peek_at(1), Some(Tok::Comma | Tok::RParen));
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.i += 1;
                Ok(Node::Str(s))
            }
            Some(Tok::Word(w)) if closes => {
                self.i += 1;
                Ok(Node::Keyword(w))
            }
            _ => self.expr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Box<Node> {
        Box::new(Node::Id(s.into()))
    }

    #[test]
    fn precedence() {
        assert_eq!(
            parse("m1 + m2 * 2").unwrap(),
            Node::Binary(
                BinOp::Add,
                id("m1"),
                Box::new(Node::Binary(
                    BinOp::Mul,
                    id("m2"),
                    Box::new(Node::Number(2.0))
                ))
            )
        );
        assert_eq!(
            parse("-2^2").unwrap(),
            Node::Neg(Box::new(Node::Binary(
                BinOp::Pow,
                Box::new(Node::Number(2.0)),
                Box::new(Node::Number(2.0))
            )))
        );
        assert_eq!(
            parse("m1 > 1 AND m2 < 2 OR m3").unwrap(),
            Node::Binary(
                BinOp::Or,
                Box::new(Node::Binary(
                    BinOp::And,
                    Box::new(Node::Binary(
                        BinOp::Gt,
                        id("m1"),
                        Box::new(Node::Number(1.0))
                    )),
                    Box::new(Node::Binary(
                        BinOp::Lt,
                        id("m2"),
                        Box::new(Node::Number(2.0))
                    )),
                )),
                id("m3")
            )
        );
        assert_eq!(
            parse("NOT m1 > 1").unwrap(),
            Node::Not(Box::new(Node::Binary(
                BinOp::Gt,
                id("m1"),
                Box::new(Node::Number(1.0))
            )))
        );
    }

    #[test]
    fn subtraction_is_left_associative() {
        assert_eq!(
            parse("m1 - m2 - m3").unwrap(),
            Node::Binary(
                BinOp::Sub,
                Box::new(Node::Binary(BinOp::Sub, id("m1"), id("m2"))),
                id("m3")
            )
        );
    }

    #[test]
    fn calls_keywords_strings_arrays() {
        assert_eq!(
            parse(r#"FILL(METRICS("cpu"), REPEAT)"#).unwrap(),
            Node::Call {
                name: "FILL".into(),
                args: vec![
                    Node::Call {
                        name: "METRICS".into(),
                        args: vec![Node::Str("cpu".into())]
                    },
                    Node::Keyword("REPEAT".into())
                ]
            }
        );
        assert_eq!(
            parse("sum([m1, -1])").unwrap(),
            Node::Call {
                name: "SUM".into(),
                args: vec![Node::Array(vec![Node::Id("m1".into()), Node::Number(-1.0)])]
            }
        );
    }

    #[test]
    fn errors() {
        let err = |s: &str| parse(s).unwrap_err().message;
        assert_eq!(err("m1 +"), "Syntax error at position 4");
        assert_eq!(err("(m1 + m2"), "Syntax error at position 8");
        assert_eq!(err("m1 m2"), "Syntax error at position 3");
        assert_eq!(err("m1 + )"), "Syntax error at position 5");
        assert_eq!(err("[m1, m2"), "Syntax error at position 7");
        assert_eq!(err(""), "Syntax error: the expression is empty");
        assert_eq!(err("FOO(m1)"), "Unknown function FOO at position 0");
        assert_eq!(
            err("m1 + SEARCH('{AWS/EC2} CPU', 'Average', 300)"),
            "Function SEARCH is not supported by sparkyard"
        );
        assert_eq!(
            err("SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\")"),
            "Metrics Insights queries (SELECT) are not supported"
        );
        assert_eq!(
            err("SUM(m1, m2)"),
            "Invalid number of arguments for function SUM: expected 1, got 2"
        );
        assert_eq!(
            err("IF(m1)"),
            "Invalid number of arguments for function IF: expected 2 to 3, got 1"
        );
        assert!(err("M1 + 1").starts_with("Unrecognized identifier M1 at position 0"));
        assert_eq!(err("m1 + \"x\""), "Syntax error at position 5");
        assert_eq!(
            err("REPEAT"),
            "Unrecognized identifier REPEAT at position 0; ids must start with a lowercase letter"
        );
        assert_eq!(
            err("SUM(REPEAT)"),
            "Unrecognized identifier REPEAT at position 4; ids must start with a lowercase letter"
        );
        assert!(
            err("FILL(m1, NEAREST)").starts_with("Unrecognized identifier NEAREST at position 9")
        );
        assert!(err("SORT(METRICS(), MAX, UP)")
            .starts_with("Unrecognized identifier UP at position 21"));
        assert!(parse("SORT(METRICS(), STDDEV, ASC, 3)").is_ok());
    }
}
