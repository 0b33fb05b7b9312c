//! Instruction lines to [`Instruction`]s and stages. Everything that can be
//! checked without knowing variable values is checked here, so a typo fails
//! before any step runs, with `FILE:LINE: reason`.

use super::expand::split_raw;
use super::lexer::{lex, Line};
use super::{Command, Copy, Dockerfile, Healthcheck, Instruction, Run, Stage, Step};
use crate::error::{Error, Result};

pub fn parse(file: &str, src: &str) -> Result<Dockerfile> {
    let err = |line: usize, reason: String| Error::Dockerfile {
        file: file.to_owned(),
        line,
        reason,
    };
    let (d, lines) = lex(src).map_err(|(l, r)| err(l, r))?;
    let mut df = Dockerfile {
        file: file.to_owned(),
        escape: d.escape,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    for line in lines {
        let step = parse_line(&line, d.escape).map_err(|r| err(line.line, r))?;
        match (&step.instruction, df.stages.last_mut()) {
            (Instruction::From { alias, .. }, _) => {
                if let Some(a) = alias {
                    if df.stages.iter().any(|s| s.name.as_deref() == Some(a)) {
                        return Err(err(line.line, format!("stage name {a:?} used twice")));
                    }
                }
                df.stages.push(Stage {
                    index: df.stages.len(),
                    name: alias.clone(),
                    from: step,
                    steps: Vec::new(),
                });
            }
            (Instruction::Arg(_), None) => df.global_args.push(step),
            (_, None) => {
                return Err(err(
                    line.line,
                    format!(
                        "{} before FROM: only ARG may come before the first FROM",
                        keyword(&step.text)
                    ),
                ))
            }
            (_, Some(stage)) => stage.steps.push(step),
        }
    }
    if df.stages.is_empty() {
        return Err(err(1, "no FROM instruction".into()));
    }
    Ok(df)
}

fn keyword(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Parses one instruction (also ONBUILD triggers, when they fire).
pub fn parse_line(line: &Line, escape: char) -> Result<Step, String> {
    let text = line.text.trim();
    let (kw, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    let kw = kw.to_ascii_uppercase();
    let instruction = instruction(&kw, rest, line, escape)?;
    Ok(Step {
        line: line.line,
        text: text.to_owned(),
        instruction,
    })
}

struct Flags {
    list: Vec<(String, Option<String>)>,
}

impl Flags {
    /// Splits leading `--name[=value]` words off `rest`.
    fn take<'a>(kw: &str, mut rest: &'a str, known: &[&str]) -> Result<(Flags, &'a str), String> {
        let mut list = Vec::new();
        loop {
            rest = rest.trim_start();
            let Some(f) = rest.strip_prefix("--") else {
                break;
            };
            let end = f.find(char::is_whitespace).unwrap_or(f.len());
            let word = &f[..end];
            rest = &f[end..];
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (word, None),
            };
            if !known.contains(&name) {
                return Err(format!("unknown flag --{name} for {kw}"));
            }
            list.push((name.to_owned(), value));
        }
        Ok((Flags { list }, rest))
    }

    fn value(&self, kw: &str, name: &str) -> Result<Option<String>, String> {
        let mut v = None;
        for (n, val) in &self.list {
            if n == name {
                match val {
                    Some(x) => v = Some(x.clone()),
                    None => return Err(format!("{kw} --{name} needs a value (--{name}=...)")),
                }
            }
        }
        Ok(v)
    }

    fn all(&self, kw: &str, name: &str) -> Result<Vec<String>, String> {
        self.list
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| {
                v.clone()
                    .ok_or_else(|| format!("{kw} --{name} needs a value (--{name}=...)"))
            })
            .collect()
    }

    fn bool(&self, kw: &str, name: &str) -> Result<bool, String> {
        match self.list.iter().rev().find(|(n, _)| n == name) {
            None => Ok(false),
            Some((_, None)) => Ok(true),
            Some((_, Some(v))) => match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("{kw} --{name}={v}: expected true or false")),
            },
        }
    }
}

/// The exec form, if `rest` is a JSON array of strings.
fn json_array(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command(kw: &str, rest: &str) -> Result<Command, String> {
    if rest.trim().is_empty() {
        return Err(format!("{kw} needs a command"));
    }
    Ok(match json_array(rest) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(rest.to_owned()),
    })
}

fn key_values(kw: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = split_raw(rest, escape).map_err(|e| format!("{kw}: {e}"))?;
    if words.is_empty() {
        return Err(format!("{kw} needs KEY=VALUE arguments"));
    }
    if !words[0].contains('=') {
        // The old form: `ENV KEY VALUE WITH SPACES`.
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{kw} {}: needs a value (KEY=VALUE or KEY VALUE)", words[0]))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    words
        .into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("{kw}: {w:?} is not KEY=VALUE"))?;
            if k.is_empty() {
                return Err(format!("{kw}: {w:?} has an empty name"));
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn one_arg(kw: &str, rest: &str) -> Result<String, String> {
    if rest.is_empty() {
        return Err(format!("{kw} needs an argument"));
    }
    Ok(rest.to_owned())
}

fn valid_stage_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || "-_.".contains(x))
}

fn instruction(kw: &str, rest: &str, line: &Line, escape: char) -> Result<Instruction, String> {
    let no_heredoc = || -> Result<(), String> {
        if line.heredocs.is_empty() {
            Ok(())
        } else {
            Err(format!("{kw} does not take here-documents"))
        }
    };
    Ok(match kw {
        "FROM" => {
            let (flags, rest) = Flags::take(kw, rest, &["platform"])?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let (image, alias) = match words.as_slice() {
                [i] => (i.to_string(), None),
                [i, a, n] if a.eq_ignore_ascii_case("as") => {
                    if !valid_stage_name(n) {
                        return Err(format!("invalid stage name {n:?}"));
                    }
                    (i.to_string(), Some(n.to_ascii_lowercase()))
                }
                [] => return Err("FROM needs an image".into()),
                _ => return Err("FROM takes IMAGE [AS NAME]".into()),
            };
            Instruction::From {
                image,
                alias,
                platform: flags.value(kw, "platform")?,
            }
        }
        "RUN" => {
            let (flags, rest) = Flags::take(kw, rest, &["mount", "network", "security"])?;
            if let Some(s) = flags.value(kw, "security")? {
                if s != "sandbox" {
                    return Err(format!(
                        "RUN --security={s} is not supported (sandbox only)"
                    ));
                }
            }
            let network = flags.value(kw, "network")?;
            if let Some(n) = &network {
                if !matches!(n.as_str(), "none" | "host" | "default") {
                    return Err(format!("RUN --network={n}: expected none, host or default"));
                }
            }
            Instruction::Run(Run {
                cmd: command(kw, rest)?,
                mounts: flags.all(kw, "mount")?,
                network,
                heredocs: line.heredocs.clone(),
            })
        }
        "CMD" | "ENTRYPOINT" => {
            no_heredoc()?;
            let c = command(kw, rest)?;
            if kw == "CMD" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "SHELL" => match json_array(rest) {
            Some(v) if !v.is_empty() => Instruction::Shell(v),
            _ => {
                return Err(
                    "SHELL needs a JSON array: SHELL [\"executable\", \"parameters\"]".into(),
                )
            }
        },
        "COPY" | "ADD" => {
            let add = kw == "ADD";
            let known: &[&str] = if add {
                &[
                    "from",
                    "chown",
                    "chmod",
                    "link",
                    "checksum",
                    "keep-git-dir",
                    "exclude",
                ]
            } else {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            };
            let (flags, rest) = Flags::take(kw, rest, known)?;
            if !flags.all(kw, "exclude")?.is_empty() {
                return Err(format!("{kw} --exclude is not supported"));
            }
            if flags.bool(kw, "parents")? {
                return Err("COPY --parents is not supported".into());
            }
            let mut words = match json_array(rest) {
                Some(v) => v,
                None => split_raw(rest, escape).map_err(|e| format!("{kw}: {e}"))?,
            };
            // Here-documents stand for sources: drop their markers.
            let markers: Vec<String> = super::lexer::heredoc_markers(rest)
                .into_iter()
                .map(|(n, _, _)| n)
                .collect();
            if !markers.is_empty() {
                words.retain(|w| {
                    !w.starts_with("<<")
                        || !markers.iter().any(|m| {
                            w.trim_start_matches(['<', '-', '"', '\''])
                                .trim_end_matches(['"', '\''])
                                == m
                        })
                });
            }
            let Some(dest) = words.pop() else {
                return Err(format!("{kw} needs a source and a destination"));
            };
            if words.is_empty() && line.heredocs.is_empty() {
                return Err(format!("{kw} needs a source and a destination"));
            }
            Instruction::Copy(Copy {
                add,
                srcs: words,
                dest,
                from: flags.value(kw, "from")?,
                chown: flags.value(kw, "chown")?,
                chmod: flags.value(kw, "chmod")?,
                link: flags.bool(kw, "link")?,
                heredocs: line.heredocs.clone(),
            })
        }
        "ENV" => {
            no_heredoc()?;
            Instruction::Env(key_values(kw, rest, escape)?)
        }
        "LABEL" => {
            no_heredoc()?;
            Instruction::Label(key_values(kw, rest, escape)?)
        }
        "ARG" => {
            let words = split_raw(rest, escape).map_err(|e| format!("ARG: {e}"))?;
            if words.is_empty() {
                return Err("ARG needs a name".into());
            }
            let mut out = Vec::new();
            for w in words {
                let (k, v) = match w.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (w.clone(), None),
                };
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("ARG: invalid name {k:?}"));
                }
                out.push((k, v));
            }
            Instruction::Arg(out)
        }
        "EXPOSE" => {
            let words = split_raw(rest, escape).map_err(|e| format!("EXPOSE: {e}"))?;
            if words.is_empty() {
                return Err("EXPOSE needs a port".into());
            }
            Instruction::Expose(words)
        }
        "VOLUME" => {
            let v = match json_array(rest) {
                Some(v) => v,
                None => split_raw(rest, escape).map_err(|e| format!("VOLUME: {e}"))?,
            };
            if v.is_empty() || v.iter().any(|x| x.trim().is_empty()) {
                return Err("VOLUME needs a path".into());
            }
            Instruction::Volume(v)
        }
        "WORKDIR" => Instruction::Workdir(one_arg(kw, rest)?),
        "USER" => Instruction::User(one_arg(kw, rest)?),
        "STOPSIGNAL" => Instruction::StopSignal(one_arg(kw, rest)?),
        "MAINTAINER" => Instruction::Maintainer(one_arg(kw, rest)?),
        "HEALTHCHECK" => {
            let (flags, rest) = Flags::take(
                kw,
                rest,
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
            )?;
            let (word, cmd_rest) = match rest.find(char::is_whitespace) {
                Some(i) => (&rest[..i], rest[i..].trim_start()),
                None => (rest, ""),
            };
            let cmd = match word.to_ascii_uppercase().as_str() {
                "NONE" if cmd_rest.is_empty() && flags.list.is_empty() => None,
                "NONE" => return Err("HEALTHCHECK NONE takes no other arguments".into()),
                "CMD" => Some(command(kw, cmd_rest)?),
                _ => return Err("HEALTHCHECK takes NONE or [OPTIONS] CMD command".into()),
            };
            Instruction::Healthcheck(Healthcheck {
                cmd,
                interval: flags.value(kw, "interval")?,
                timeout: flags.value(kw, "timeout")?,
                start_period: flags.value(kw, "start-period")?,
                start_interval: flags.value(kw, "start-interval")?,
                retries: flags.value(kw, "retries")?,
            })
        }
        "ONBUILD" => {
            let inner = keyword(rest);
            match inner.as_str() {
                "" => return Err("ONBUILD needs an instruction".into()),
                "ONBUILD" | "FROM" | "MAINTAINER" => {
                    return Err(format!("ONBUILD {inner} is not allowed"))
                }
                _ => {}
            }
            let l = Line {
                line: line.line,
                text: rest.to_owned(),
                heredocs: Vec::new(),
            };
            parse_line(&l, escape).map_err(|e| format!("ONBUILD: {e}"))?;
            Instruction::Onbuild(rest.to_owned())
        }
        "" => return Err("empty instruction".into()),
        other => return Err(format!("unknown instruction {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Dockerfile {
        parse("Dockerfile", src).unwrap()
    }

    fn e(src: &str) -> String {
        parse("Dockerfile", src).unwrap_err().to_string()
    }

    #[test]
    fn stages_and_global_args() {
        let df = p(
            "ARG V=1\nFROM base:$V AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n",
        );
        assert_eq!(df.global_args.len(), 1);
        assert_eq!(df.stages.len(), 2);
        assert_eq!(df.stages[0].name.as_deref(), Some("build"));
        assert_eq!(df.stages[1].steps[0].line, 5);
        match &df.stages[1].steps[0].instruction {
            Instruction::Copy(c) => {
                assert_eq!(c.from.as_deref(), Some("build"));
                assert_eq!(
                    (c.srcs.as_slice(), c.dest.as_str()),
                    (&["/out".to_owned()][..], "/")
                );
            }
            i => panic!("{i:?}"),
        }
    }

    #[test]
    fn exec_and_shell_forms() {
        let df = p("FROM scratch\nCMD [\"a\", \"b c\"]\nENTRYPOINT echo hi\nRUN [\"x\"\nSHELL [\"/bin/bash\", \"-c\"]\n");
        let s = &df.stages[0].steps;
        assert_eq!(
            s[0].instruction,
            Instruction::Cmd(Command::Exec(vec!["a".into(), "b c".into()]))
        );
        assert_eq!(
            s[1].instruction,
            Instruction::Entrypoint(Command::Shell("echo hi".into()))
        );
        // not valid JSON: the shell form, as Docker reads it
        match &s[2].instruction {
            Instruction::Run(r) => assert_eq!(r.cmd, Command::Shell("[\"x\"".into())),
            i => panic!("{i:?}"),
        }
        assert_eq!(
            s[3].instruction,
            Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
        );
    }

    #[test]
    fn flags() {
        let df = p("FROM --platform=linux/amd64 scratch\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none true\nCOPY --chown=1:2 --chmod=644 --link a b /d/\n");
        let s = &df.stages[0].steps;
        match &s[0].instruction {
            Instruction::Run(r) => {
                assert_eq!(r.mounts, ["type=cache,target=/c", "type=tmpfs,target=/t"]);
                assert_eq!(r.network.as_deref(), Some("none"));
                assert_eq!(r.cmd, Command::Shell("true".into()));
            }
            i => panic!("{i:?}"),
        }
        match &s[1].instruction {
            Instruction::Copy(c) => {
                assert_eq!(
                    (c.chown.as_deref(), c.chmod.as_deref(), c.link),
                    (Some("1:2"), Some("644"), true)
                );
                assert_eq!(c.srcs, ["a", "b"]);
            }
            i => panic!("{i:?}"),
        }
    }

    #[test]
    fn env_label_arg() {
        let df = p(
            "FROM scratch\nENV A=1 B=\"x y\"\nENV OLD value with spaces\nLABEL a.b=c\nARG X Y=2\n",
        );
        let s = &df.stages[0].steps;
        assert_eq!(
            s[0].instruction,
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"x y\"".into())
            ])
        );
        assert_eq!(
            s[1].instruction,
            Instruction::Env(vec![("OLD".into(), "value with spaces".into())])
        );
        assert_eq!(
            s[3].instruction,
            Instruction::Arg(vec![("X".into(), None), ("Y".into(), Some("2".into()))])
        );
    }

    #[test]
    fn heredoc_sources() {
        let df = p("FROM scratch\nCOPY <<EOF /etc/motd\nhello\nEOF\nRUN <<EOF\necho hi\nEOF\n");
        match &df.stages[0].steps[0].instruction {
            Instruction::Copy(c) => {
                assert!(c.srcs.is_empty());
                assert_eq!(c.dest, "/etc/motd");
                assert_eq!(c.heredocs[0].content, "hello\n");
            }
            i => panic!("{i:?}"),
        }
        assert_eq!(df.stages[0].steps[1].line, 5);
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            e("FROM scratch\n\nFOO bar\n"),
            "Dockerfile:3: unknown instruction FOO"
        );
        assert_eq!(
            e("RUN x\n"),
            "Dockerfile:1: RUN before FROM: only ARG may come before the first FROM"
        );
        assert_eq!(
            e("FROM a\nCOPY --bogus x y\n"),
            "Dockerfile:2: unknown flag --bogus for COPY"
        );
        assert_eq!(
            e("FROM a\nCOPY x\n"),
            "Dockerfile:2: COPY needs a source and a destination"
        );
        assert_eq!(
            e("FROM a\nSHELL sh -c\n"),
            "Dockerfile:2: SHELL needs a JSON array: SHELL [\"executable\", \"parameters\"]"
        );
        assert_eq!(
            e("FROM a AS x\nFROM b AS x\n"),
            "Dockerfile:2: stage name \"x\" used twice"
        );
        assert_eq!(
            e("FROM a\nONBUILD FROM b\n"),
            "Dockerfile:2: ONBUILD FROM is not allowed"
        );
        assert_eq!(
            e("FROM a\nRUN --network=bridge x\n"),
            "Dockerfile:2: RUN --network=bridge: expected none, host or default"
        );
        assert_eq!(
            e("FROM a\nENV\n"),
            "Dockerfile:2: ENV needs KEY=VALUE arguments"
        );
        assert!(e("# nothing\n").contains("no FROM"));
        assert!(e("FROM a\nRUN <<EOF\nx\n").starts_with("Dockerfile:2: here-document EOF"));
    }
}
