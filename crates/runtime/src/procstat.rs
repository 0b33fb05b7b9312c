//! What `/proc/PID/stat` says about a process: enough to tell a live container init
//! from a recycled pid or a zombie.

/// The fields of `/proc/PID/stat` rt needs.
#[derive(Debug, Clone, Copy)]
pub struct ProcStat {
    pub state: char,
    pub ppid: i32,
    /// Clock ticks after boot when the process started (field 22).
    pub start_time: u64,
}

impl ProcStat {
    /// Zombies and dead tasks have exited: the container is stopped.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Read and parse `/proc/PID/stat`; `None` when the process does not exist.
pub fn read(pid: i32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(&stat)
}

fn parse(stat: &str) -> Option<ProcStat> {
    // The command name is in parentheses and may itself contain spaces or ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        let st = parse(line).unwrap();
        assert_eq!((st.state, st.ppid, st.start_time), ('S', 1, 12345));
    }

    #[test]
    fn reads_own_process() {
        let st = read(std::process::id() as i32).unwrap();
        assert!(!st.is_dead());
        assert!(st.start_time > 0);
    }
}
