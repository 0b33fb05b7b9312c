//! Variable expansion and quote removal as Docker applies them to the
//! arguments of ADD, ARG, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR and RUN's flags: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR:+alt}` (and the forms without `:`, which test set rather than
//! non-empty), `${VAR:?msg}`; single quotes are literal, double quotes
//! expand, the escape character protects the next character.

/// Looks names up; returns `None` for unset.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

pub struct Expander<'a> {
    pub escape: char,
    pub vars: Vars<'a>,
}

struct Scan {
    c: Vec<char>,
    i: usize,
}

impl Scan {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.i += 1;
        c
    }
}

struct Words {
    out: Vec<String>,
    cur: String,
    started: bool,
    split: bool,
}

impl Words {
    fn raw(&mut self, c: char) {
        self.cur.push(c);
        self.started = true;
    }
    fn add(&mut self, c: char) {
        if self.split && c.is_whitespace() {
            if self.started {
                self.out.push(std::mem::take(&mut self.cur));
            }
            self.started = false;
        } else {
            self.raw(c);
        }
    }
}

impl Expander<'_> {
    /// The whole text as one word (whitespace kept).
    pub fn word(&self, text: &str) -> Result<String, String> {
        let mut w = self.run_all(text, false)?;
        Ok(w.pop().unwrap_or_default())
    }

    /// The text split into words on unquoted whitespace.
    pub fn words(&self, text: &str) -> Result<Vec<String>, String> {
        self.run_all(text, true)
    }

    /// Only `$` substitutions; quotes and escapes stay as written (what a
    /// here-document's content gets, as BuildKit's raw-quote mode).
    pub fn raw(&self, text: &str) -> Result<String, String> {
        let mut sc = Scan {
            c: text.chars().collect(),
            i: 0,
        };
        let mut out = String::new();
        while let Some(c) = sc.next() {
            if c == '$' {
                out.push_str(&self.dollar(&mut sc)?);
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn run_all(&self, text: &str, split: bool) -> Result<Vec<String>, String> {
        let mut sc = Scan {
            c: text.chars().collect(),
            i: 0,
        };
        let mut w = Words {
            out: Vec::new(),
            cur: String::new(),
            started: !split,
            split,
        };
        self.run(&mut sc, &mut w, None)?;
        if w.started {
            w.out.push(w.cur);
        }
        Ok(w.out)
    }

    fn run(&self, sc: &mut Scan, w: &mut Words, stop: Option<char>) -> Result<(), String> {
        while let Some(ch) = sc.peek() {
            if Some(ch) == stop {
                return Ok(());
            }
            sc.i += 1;
            if ch == self.escape {
                match sc.next() {
                    Some(n) => w.raw(n),
                    None => w.raw(ch),
                }
            } else if ch == '\'' {
                w.started = true;
                loop {
                    match sc.next() {
                        None => return Err("unterminated single quote".into()),
                        Some('\'') => break,
                        Some(c) => w.raw(c),
                    }
                }
            } else if ch == '"' {
                w.started = true;
                loop {
                    match sc.next() {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => break,
                        Some('$') => {
                            let v = self.dollar(sc)?;
                            v.chars().for_each(|c| w.raw(c));
                        }
                        Some(c) if c == self.escape => match sc.peek() {
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                sc.i += 1;
                                w.raw(n);
                            }
                            _ => w.raw(c),
                        },
                        Some(c) => w.raw(c),
                    }
                }
            } else if ch == '$' {
                let v = self.dollar(sc)?;
                v.chars().for_each(|c| w.add(c));
            } else {
                w.add(ch);
            }
        }
        if stop.is_some() {
            return Err("missing '}' in variable substitution".into());
        }
        Ok(())
    }

    fn name(sc: &mut Scan) -> String {
        let mut n = String::new();
        while let Some(c) = sc.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                sc.i += 1;
            } else {
                break;
            }
        }
        n
    }

    fn dollar(&self, sc: &mut Scan) -> Result<String, String> {
        match sc.peek() {
            Some('{') => {
                sc.i += 1;
                let name = Self::name(sc);
                if name.is_empty() {
                    return Err("bad substitution: ${ without a variable name".into());
                }
                let value = (self.vars)(&name);
                let (colon, op) = match sc.next() {
                    Some('}') => return Ok(value.unwrap_or_default()),
                    Some(':') => (true, sc.next()),
                    op @ Some('-' | '+' | '?') => (false, op),
                    _ => return Err(format!("bad substitution in ${{{name}...}}")),
                };
                let mut inner = Words {
                    out: Vec::new(),
                    cur: String::new(),
                    started: true,
                    split: false,
                };
                self.run(sc, &mut inner, Some('}'))?;
                sc.i += 1;
                let word = inner.cur;
                let set = match &value {
                    Some(v) => !colon || !v.is_empty(),
                    None => false,
                };
                match op {
                    Some('-') => Ok(if set { value.unwrap_or_default() } else { word }),
                    Some('+') => Ok(if set { word } else { String::new() }),
                    Some('?') if set => Ok(value.unwrap_or_default()),
                    Some('?') => Err(if word.is_empty() {
                        format!("{name}: not set")
                    } else {
                        format!("{name}: {word}")
                    }),
                    _ => Err(format!("unsupported modifier in ${{{name}...}}")),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = Self::name(sc);
                Ok((self.vars)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }
}

/// Splits on unquoted whitespace, keeping quotes and escapes, for
/// instructions whose words are expanded one by one (`ENV A="x y" B=z`).
pub fn split_raw(text: &str, escape: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
            }
            None if c == escape => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(n: &str) -> Option<String> {
        match n {
            "A" => Some("a".into()),
            "E" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    fn e() -> Expander<'static> {
        Expander {
            escape: '\\',
            vars: &vars,
        }
    }

    #[test]
    fn expands_like_docker() {
        let x = |s: &str| e().word(s).unwrap();
        assert_eq!(x("$A/${A}b"), "a/ab");
        assert_eq!(x("${U:-d}|${E:-d}|${E-d}|${A:-d}"), "d|d||a");
        assert_eq!(x("${A:+alt}|${U:+alt}|${E+set}|${E:+set}"), "alt||set|");
        assert_eq!(x("'$A' \"$A\" \\$A"), "$A a $A");
        assert_eq!(x("${U:-${A}x}"), "ax");
        assert_eq!(x("a$ b$1"), "a$ b$1");
        assert_eq!(x("\"q\\\"\\n\""), "q\"\\n");
        assert!(e().word("${U:?need it}").unwrap_err().contains("need it"));
        assert!(e().word("${A").is_err());
        assert!(e().word("'a").is_err());
    }

    #[test]
    fn raw_keeps_quotes() {
        assert_eq!(e().raw("'$A' \"${U:-d}\" \\x").unwrap(), "'a' \"d\" \\x");
    }

    #[test]
    fn words_split_unquoted() {
        let w = |s: &str| e().words(s).unwrap();
        assert_eq!(w("a  \"b c\" $SP \"$SP\""), ["a", "b c", "x", "y", "x y"]);
        assert_eq!(w("$U x"), ["x"]);
        assert_eq!(w("'' x"), ["", "x"]);
    }

    #[test]
    fn raw_split_keeps_quotes() {
        assert_eq!(
            split_raw(r#"A="x y" B=z\ w C='q'"#, '\\').unwrap(),
            [r#"A="x y""#, r"B=z\ w", "C='q'"]
        );
        let ex = e();
        assert_eq!(ex.word(r"z\ w").unwrap(), "z w");
    }
}
