//! Physical lines to instructions: parser directives, comments, line
//! continuations and here-documents. Each instruction keeps the number of
//! the line it starts on, for `FILE:LINE:` errors.

/// The parser directives at the top of a Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directives {
    pub escape: char,
    /// `# syntax=`: recorded, not acted on (there is no frontend to fetch).
    pub syntax: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
        }
    }
}

/// A here-document that followed an instruction (`RUN <<EOF`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// False when the word was quoted (`<<'EOF'`): no variable expansion.
    pub expand: bool,
}

/// One instruction's text, continuations joined, with its here-documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub line: usize,
    pub text: String,
    pub heredocs: Vec<Heredoc>,
}

/// An error at a line (1-based).
pub type LexError = (usize, String);

pub fn lex(src: &str) -> Result<(Directives, Vec<Line>), LexError> {
    // Editors on some systems start files with a byte-order mark.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines: Vec<&str> = src
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut d = Directives::default();
    let mut i = 0;
    let mut seen = Vec::new();
    while i < lines.len() {
        let Some((key, value)) = directive(lines[i]) else {
            break;
        };
        if seen.contains(&key) {
            return Err((i + 1, format!("parser directive {key} given twice")));
        }
        match key.as_str() {
            "escape" => match value.as_str() {
                "\\" => d.escape = '\\',
                "`" => d.escape = '`',
                _ => {
                    return Err((
                        i + 1,
                        format!("invalid escape character {value:?}: must be \\ or `"),
                    ))
                }
            },
            "syntax" => d.syntax = Some(value),
            // BuildKit's linter settings: no meaning for a build.
            "check" => {}
            _ => break,
        }
        seen.push(key);
        i += 1;
    }

    let mut out = Vec::new();
    while i < lines.len() {
        let first = lines[i].trim_start();
        if first.is_empty() || first.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut text = String::new();
        loop {
            let l = lines[i];
            i += 1;
            let trimmed = l.trim_end();
            if let Some(body) = trimmed.strip_suffix(d.escape) {
                {
                    text.push_str(body);
                    // Comments and blank lines inside a continuation are dropped.
                    while i < lines.len() {
                        let t = lines[i].trim_start();
                        if t.starts_with('#') || t.is_empty() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i < lines.len() {
                        continue;
                    }
                    break;
                }
            }
            text.push_str(l);
            break;
        }
        let text = text.trim().to_owned();
        let mut heredocs = Vec::new();
        let keyword = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, chomp, expand) in heredoc_markers(&text) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let l = if chomp {
                        raw.trim_start_matches('\t')
                    } else {
                        raw
                    };
                    if l == name {
                        closed = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !closed {
                    return Err((start, format!("here-document {name} is not terminated")));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        out.push(Line {
            line: start,
            text,
            heredocs,
        });
    }
    Ok((d, out))
}

fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim();
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_owned()))
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` words in an instruction.
pub fn heredoc_markers(text: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for w in text.split_whitespace() {
        let Some(mut rest) = w.strip_prefix("<<") else {
            continue;
        };
        let chomp = rest.starts_with('-');
        if chomp {
            rest = &rest[1..];
        }
        let mut expand = true;
        for q in ['"', '\''] {
            if rest.len() >= 2 && rest.starts_with(q) && rest.ends_with(q) {
                rest = &rest[1..rest.len() - 1];
                expand = false;
            }
        }
        if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((rest.to_owned(), chomp, expand));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_comments_continuations() {
        let src = "# syntax=docker/dockerfile:1\n# escape=`\n\nFROM scratch\n# a comment\nRUN echo a `\n  # inside\n  b\n\nENV X=1\n";
        let (d, l) = lex(src).unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(l.len(), 3);
        assert_eq!((l[1].line, l[1].text.as_str()), (6, "RUN echo a   b"));
        assert_eq!(l[2].line, 10);
    }

    #[test]
    fn directives_only_at_top() {
        let (d, l) = lex("FROM scratch\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(l[1].text, "RUN a  b");
        assert!(lex("# escape=x\n").unwrap_err().1.contains("escape"));
        assert_eq!(lex("# escape=`\n# escape=\\\n").unwrap_err().0, 2);
    }

    #[test]
    fn crlf_and_bom() {
        let (d, l) = lex("\u{feff}# escape=`\r\nFROM a\r\nRUN x `\r\n  y\r\n").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(l[1].text, "RUN x   y");
    }

    #[test]
    fn heredocs() {
        let src =
            "RUN <<EOF bash -e\necho $A\nEOF\nCOPY <<-'X' <<Y /d/\n\tone\n\tX\ntwo\nY\nRUN x\n";
        let (_, l) = lex(src).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].heredocs[0].content, "echo $A\n");
        assert!(l[0].heredocs[0].expand);
        assert_eq!(l[1].heredocs[0].content, "one\n");
        assert!(!l[1].heredocs[0].expand);
        assert_eq!(l[1].heredocs[1].content, "two\n");
        assert_eq!(l[2].line, 9);
        assert!(lex("RUN <<EOF\nno end\n").unwrap_err().1.contains("EOF"));
    }
}
