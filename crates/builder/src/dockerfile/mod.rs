//! The Dockerfile language: [`lexer`] turns text into instruction lines,
//! [`parser`] turns those into [`Instruction`]s grouped in stages, and
//! [`expand`] does the variable expansion the build applies later (values
//! depend on ARGs and ENVs known only while building).

pub mod expand;
pub mod lexer;
pub mod parser;

pub use lexer::Heredoc;
pub use parser::parse;

/// `["exec", "form"]` or `shell form`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

/// COPY and ADD.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Copy {
    pub add: bool,
    /// Sources as written (expanded at build time).
    pub srcs: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `COPY <<EOF /file`: here-documents standing for sources.
    pub heredocs: Vec<Heredoc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub cmd: Command,
    /// `--mount=` values as written.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healthcheck {
    /// `None` for `HEALTHCHECK NONE`.
    pub cmd: Option<Command>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Copy(Copy),
    /// Raw `KEY=VALUE` words (values expanded at build time).
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Workdir(String),
    User(String),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger instruction's text, run in builds FROM this image.
    Onbuild(String),
    Maintainer(String),
}

impl Instruction {
    /// Whether Docker expands variables in this instruction's arguments.
    pub fn expands(&self) -> bool {
        !matches!(
            self,
            Instruction::Run(_)
                | Instruction::Cmd(_)
                | Instruction::Entrypoint(_)
                | Instruction::Shell(_)
                | Instruction::Healthcheck(_)
                | Instruction::Onbuild(_)
                | Instruction::Maintainer(_)
        )
    }
}

/// One instruction with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    /// The instruction as written (continuations joined), for progress and history.
    pub text: String,
    pub instruction: Instruction,
}

/// `FROM ...` and the steps up to the next `FROM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    pub from: Step,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dockerfile {
    /// The name errors use (the path given).
    pub file: String,
    pub escape: char,
    /// ARGs before the first FROM.
    pub global_args: Vec<Step>,
    pub stages: Vec<Stage>,
}
