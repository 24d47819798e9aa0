//! Tokenizer and parser for the assignment subset of `xl.cfg` / `xm` files.
//!
//! The grammar follows libxlu's `libxlu_cfg_y.y`: a file is a sequence of
//! `IDENT = value` (or `IDENT += list`) settings ended by a newline or `;`, where a
//! value is a string, a number or a `[ ... ]` list of strings/numbers that may span
//! lines and end with a trailing comma. On top of that it accepts what Python (and
//! therefore `xm`) accepts in the same files: `'''`/`"""` triple-quoted strings and a
//! trailing `,` after a top-level value. Anything else (`import`, `def`, `%`
//! formatting, function calls) is Python code, which is refused, never evaluated.

/// Longest list we accept: xl caps devices far below this, so more is hostile.
const MAX_LIST_ITEMS: usize = 4096;

/// Python statements an `xm` file may hold; naming them gives a clearer error than
/// "expected `=`".
const PYTHON_KEYWORDS: &[&str] = &[
    "import", "from", "def", "if", "elif", "else", "for", "while", "try", "except", "class",
    "return", "with", "raise", "print", "del", "global", "lambda",
];

/// Characters that only appear in these files as Python operators.
const PYTHON_OPERATORS: &str = "%()+*{}:<>!/-";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// A string (unescaped) or a number (as written).
    Atom(String),
    List(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Setting {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

/// What is wrong and where; the caller adds the file name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SyntaxError {
    /// Breaks the grammar.
    Malformed { line: usize, reason: String },
    /// Python code that only xm's interpreter could run.
    Python { line: usize, what: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Eq,
    PlusEq,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Newline,
    /// A character outside the grammar (Python's `%`, `(`, `+`, or garbage).
    Stray(char),
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The error for finding `found` where the grammar wants something else: a Python
/// operator means Python code, anything else a plain syntax error.
fn unexpected(line: usize, found: Option<&Tok>, reason: String) -> SyntaxError {
    match found {
        Some(Tok::Stray(c)) if PYTHON_OPERATORS.contains(*c) => SyntaxError::Python {
            line,
            what: format!("Python expression (`{c}`)"),
        },
        Some(Tok::Stray(c)) => malformed(
            line,
            format!("unexpected character {:?}", c.escape_debug().to_string()),
        ),
        _ => malformed(line, reason),
    }
}

fn malformed(line: usize, reason: impl Into<String>) -> SyntaxError {
    SyntaxError::Malformed {
        line,
        reason: reason.into(),
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

fn tokenize(text: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '\n' => {
                out.push(Token {
                    tok: Tok::Newline,
                    line,
                });
                line += 1;
                i += 1;
            }
            ' ' | '\t' | '\r' | '\u{c}' => i += 1,
            '#' => {
                while chars.get(i).is_some_and(|&c| c != '\n') {
                    i += 1;
                }
            }
            // A backslash-newline joins lines, as in Python.
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                line += 1;
                i += 2;
            }
            '=' => {
                out.push(Token { tok: Tok::Eq, line });
                i += 1;
            }
            '+' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token {
                    tok: Tok::PlusEq,
                    line,
                });
                i += 2;
            }
            '[' => {
                out.push(Token {
                    tok: Tok::LBracket,
                    line,
                });
                i += 1;
            }
            ']' => {
                out.push(Token {
                    tok: Tok::RBracket,
                    line,
                });
                i += 1;
            }
            ',' => {
                out.push(Token {
                    tok: Tok::Comma,
                    line,
                });
                i += 1;
            }
            ';' => {
                out.push(Token {
                    tok: Tok::Semi,
                    line,
                });
                i += 1;
            }
            '\'' | '"' => {
                let start_line = line;
                let (s, next, lines) = string(&chars, i, line)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start_line,
                });
                line = lines;
                i = next;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Num(chars.get(start..i).unwrap_or_default().iter().collect()),
                    line,
                });
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(chars.get(start..i).unwrap_or_default().iter().collect()),
                    line,
                });
            }
            // Anything else becomes a token the parser refuses where it stands, so a
            // `def` earlier in the file is what gets reported.
            other => {
                out.push(Token {
                    tok: Tok::Stray(other),
                    line,
                });
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Reads the string starting at `chars[start]` (a quote); returns its unescaped text,
/// the index after its closing quote and the line number there.
fn string(
    chars: &[char],
    start: usize,
    mut line: usize,
) -> Result<(String, usize, usize), SyntaxError> {
    let start_line = line;
    let q = chars.get(start).copied().unwrap_or('"');
    let triple = chars.get(start + 1) == Some(&q) && chars.get(start + 2) == Some(&q);
    let mut i = start + if triple { 3 } else { 1 };
    let mut s = String::new();
    let unterminated = || malformed(start_line, "unterminated string");
    loop {
        let c = *chars.get(i).ok_or_else(unterminated)?;
        if c == q {
            if !triple {
                return Ok((s, i + 1, line));
            }
            if chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q) {
                return Ok((s, i + 3, line));
            }
        }
        if c == '\n' {
            if !triple {
                return Err(unterminated());
            }
            line += 1;
        }
        if c != '\\' {
            s.push(c);
            i += 1;
            continue;
        }
        // Python/xl escapes; an unknown escape keeps its backslash (Python does,
        // and xl's disk targets use `\:` for qemu).
        let e = *chars.get(i + 1).ok_or_else(unterminated)?;
        i += 2;
        match e {
            'n' => s.push('\n'),
            't' => s.push('\t'),
            'r' => s.push('\r'),
            'a' => s.push('\u{7}'),
            'b' => s.push('\u{8}'),
            'f' => s.push('\u{c}'),
            'v' => s.push('\u{b}'),
            '\\' | '\'' | '"' => s.push(e),
            '\n' => line += 1,
            'x' => {
                let hex: String = chars.get(i..i + 2).unwrap_or_default().iter().collect();
                let v = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .and_then(char::from_u32)
                    .ok_or_else(|| malformed(line, "bad \\x escape in string"))?;
                s.push(v);
                i += 2;
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                let mut n = 1;
                while n < 3 {
                    match chars.get(i).and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            i += 1;
                            n += 1;
                        }
                        None => break,
                    }
                }
                s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
            other => {
                if other == '\n' {
                    line += 1;
                }
                s.push('\\');
                s.push(other);
            }
        }
    }
}

fn describe(tok: Option<&Tok>) -> String {
    match tok {
        None => "end of file".into(),
        Some(Tok::Ident(s)) => format!("name `{}`", clip(s)),
        Some(Tok::Str(_)) => "a string".into(),
        Some(Tok::Num(n)) => format!("number `{}`", clip(n)),
        Some(Tok::Eq) => "`=`".into(),
        Some(Tok::PlusEq) => "`+=`".into(),
        Some(Tok::LBracket) => "`[`".into(),
        Some(Tok::RBracket) => "`]`".into(),
        Some(Tok::Comma) => "`,`".into(),
        Some(Tok::Semi) => "`;`".into(),
        Some(Tok::Newline) => "end of line".into(),
        Some(Tok::Stray(c)) => format!("{:?}", c.escape_debug().to_string()),
    }
}

/// At most 40 characters of `s`, for messages.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// Parses `text` into its settings, in file order. A key set twice keeps the last
/// value (as Python and xl do); `+=` appends to a list.
pub(crate) fn parse(text: &str) -> Result<Vec<Setting>, SyntaxError> {
    let toks = tokenize(text)?;
    let mut settings: Vec<Setting> = Vec::new();
    let mut i = 0;
    let last_line = toks.last().map_or(1, |t| t.line);
    let line_at = |i: usize| toks.get(i).map_or(last_line, |t| t.line);
    loop {
        while matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Newline | Tok::Semi)) {
            i += 1;
        }
        let Some(t) = toks.get(i) else { break };
        let line = t.line;
        let Tok::Ident(key) = &t.tok else {
            return Err(unexpected(
                line,
                Some(&t.tok),
                format!("expected a setting name, found {}", describe(Some(&t.tok))),
            ));
        };
        i += 1;
        let append = match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Eq) => false,
            Some(Tok::PlusEq) => true,
            other => {
                if PYTHON_KEYWORDS.contains(&key.as_str()) {
                    return Err(SyntaxError::Python {
                        line,
                        what: format!("Python statement `{key}`"),
                    });
                }
                return Err(unexpected(
                    line,
                    other,
                    format!(
                        "expected `=` after `{}`, found {}",
                        clip(key),
                        describe(other)
                    ),
                ));
            }
        };
        i += 1;
        let value = match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Str(s) | Tok::Num(s)) => {
                i += 1;
                Value::Atom(s.clone())
            }
            Some(Tok::LBracket) => {
                i += 1;
                let mut items = Vec::new();
                loop {
                    while matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Newline)) {
                        i += 1;
                    }
                    match toks.get(i).map(|t| &t.tok) {
                        Some(Tok::RBracket) => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Str(s) | Tok::Num(s)) => {
                            if items.len() >= MAX_LIST_ITEMS {
                                return Err(malformed(line_at(i), "list too long"));
                            }
                            items.push(s.clone());
                            i += 1;
                        }
                        None => {
                            return Err(malformed(line, format!("unterminated list for `{key}`")))
                        }
                        Some(Tok::LBracket) => {
                            return Err(malformed(line_at(i), "nested lists are not supported"))
                        }
                        other => {
                            return Err(unexpected(
                                line_at(i),
                                other,
                                format!("expected a list item, found {}", describe(other)),
                            ))
                        }
                    }
                    while matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Newline)) {
                        i += 1;
                    }
                    match toks.get(i).map(|t| &t.tok) {
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::RBracket) => {
                            i += 1;
                            break;
                        }
                        None => {
                            return Err(malformed(line, format!("unterminated list for `{key}`")))
                        }
                        other => {
                            return Err(unexpected(
                                line_at(i),
                                other,
                                format!("expected `,` or `]` in list, found {}", describe(other)),
                            ))
                        }
                    }
                }
                Value::List(items)
            }
            other => {
                let what = match other {
                    Some(Tok::Ident(_)) => {
                        return Err(SyntaxError::Python {
                            line,
                            what: format!("Python expression as the value of `{}`", clip(key)),
                        })
                    }
                    other => describe(other),
                };
                return Err(unexpected(
                    line,
                    other,
                    format!("expected a value after `{} =`, found {what}", clip(key)),
                ));
            }
        };
        // The value ends the statement; a trailing `,` or `;` is tolerated.
        if matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Comma)) {
            i += 1;
        }
        match toks.get(i).map(|t| &t.tok) {
            None | Some(Tok::Newline | Tok::Semi) => {}
            Some(Tok::Ident(_)) => {
                return Err(SyntaxError::Python {
                    line: line_at(i),
                    what: format!("Python expression in the value of `{}`", clip(key)),
                })
            }
            other => {
                return Err(unexpected(
                    line_at(i),
                    other,
                    format!(
                        "unexpected {} after the value of `{}`",
                        describe(other),
                        clip(key)
                    ),
                ))
            }
        }
        let existing = settings.iter_mut().rev().find(|s| s.key == *key);
        match (append, existing, value) {
            (true, Some(prev), Value::List(more)) => {
                if let Value::List(items) = &mut prev.value {
                    if items.len() + more.len() > MAX_LIST_ITEMS {
                        return Err(malformed(line, "list too long"));
                    }
                    items.extend(more);
                } else {
                    return Err(malformed(
                        line,
                        format!("`+=` on `{}`, which is not a list", clip(key)),
                    ));
                }
            }
            (_, _, value) => settings.push(Setting {
                key: key.clone(),
                value,
                line,
            }),
        }
    }
    Ok(settings)
}
