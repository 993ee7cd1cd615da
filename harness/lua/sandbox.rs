//! A Lua state a script cannot escape: only the `string`, `table`, `math`
//! and `utf8` libraries and the harmless base functions; no io, os,
//! require, load, dofile or debug. Each call runs under an instruction
//! budget (a count hook) and the whole state under a memory limit, so a
//! runaway script fails its call instead of stalling or exhausting the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Value, VmState};

/// Instructions one call may run (a few milliseconds of Lua).
pub(crate) const INSTRUCTION_BUDGET: u64 = 1_000_000;
/// Bytes the whole state may hold (script, `state` table, temporaries).
pub(crate) const MEMORY_LIMIT: usize = 16 << 20;
/// The hook runs every this many instructions.
const HOOK_EVERY: u32 = 1000;

/// Base functions a script may not see: they read files, load code, or
/// reach the collector.
const REMOVED: &[&str] = &[
    "dofile",
    "loadfile",
    "load",
    "loadstring",
    "require",
    "collectgarbage",
    "print",
    "io",
    "os",
    "debug",
    "package",
];

pub(crate) struct Sandbox {
    pub(crate) lua: Lua,
    /// Hook ticks in the current call.
    ticks: Arc<AtomicU64>,
}

impl Sandbox {
    /// A fresh state; `math.random` is seeded with `seed` (and
    /// `math.randomseed` removed) so that runs repeat.
    pub(crate) fn new(seed: u64) -> mlua::Result<Self> {
        let lua = Lua::new_with(
            StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8,
            LuaOptions::default(),
        )?;
        let g = lua.globals();
        for name in REMOVED {
            g.raw_set(*name, Value::Nil)?;
        }
        let math: mlua::Table = g.get("math")?;
        let randomseed: Function = math.get("randomseed")?;
        randomseed.call::<()>((seed as i64 & 0x7fff_ffff_ffff, 0))?;
        math.raw_set("randomseed", Value::Nil)?;
        // string.dump turns a function into bytecode: nothing a policy needs.
        let string: mlua::Table = g.get("string")?;
        string.raw_set("dump", Value::Nil)?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let ticks = Arc::new(AtomicU64::new(0));
        let t = ticks.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, debug| {
                let n = t.fetch_add(1, Ordering::Relaxed) + 1;
                if n * u64::from(HOOK_EVERY) > INSTRUCTION_BUDGET {
                    let src = debug.source();
                    let file = src.short_src.as_deref().unwrap_or("?").to_string();
                    let line = debug.current_line().unwrap_or(0);
                    return Err(mlua::Error::runtime(format!(
                        "{file}:{line}: instruction budget of {INSTRUCTION_BUDGET} exceeded (an endless loop?)"
                    )));
                }
                Ok(VmState::Continue)
            },
        )?;
        Ok(Self { lua, ticks })
    }

    /// Compiles `source` named `name` (the path as the scenario gives it,
    /// so messages read `policies/cpu.lua:7: ...`).
    pub(crate) fn compile(&self, name: &str, source: &str) -> mlua::Result<Function> {
        self.lua
            .load(source)
            .set_name(format!("@{name}"))
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()
    }

    /// Calls `f` with a fresh instruction budget.
    pub(crate) fn call<A: mlua::IntoLuaMulti, R: mlua::FromLuaMulti>(
        &self,
        f: &Function,
        args: A,
    ) -> mlua::Result<R> {
        self.ticks.store(0, Ordering::Relaxed);
        f.call(args)
    }
}

/// An error as one line a user can act on: the script's `file:line:
/// message`, without mlua's wrapping and traceback. `name` says which
/// script when Lua itself gives no position (the memory limit).
pub(crate) fn describe(e: &mlua::Error, name: &str) -> String {
    use mlua::Error as E;
    match e {
        E::CallbackError { cause, .. } => describe(cause, name),
        E::WithContext { cause, .. } => describe(cause, name),
        E::MemoryError(_) => format!(
            "{name}: memory limit of {} MiB exceeded",
            MEMORY_LIMIT >> 20
        ),
        E::SyntaxError { message, .. } => first_line(message),
        E::RuntimeError(m) => first_line(m),
        other => first_line(&other.to_string()),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// `file:line` of the Lua code calling into Rust now, for errors raised
/// by the harness's own functions (a bad argument).
pub(crate) fn caller(lua: &Lua) -> String {
    lua.inspect_stack(1, |d| {
        let src = d.source();
        let file = src.short_src.as_deref().unwrap_or("?").to_string();
        format!("{file}:{}", d.current_line().unwrap_or(0))
    })
    .unwrap_or_default()
}

/// The line number in an error message `file:LINE: ...`, if it has one.
pub(crate) fn line_of(msg: &str, name: &str) -> Option<usize> {
    let rest = msg.strip_prefix(name)?.strip_prefix(':')?;
    rest.split(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<mlua::Value, String> {
        let sb = Sandbox::new(1).unwrap();
        let f = sb
            .compile("t.lua", src)
            .map_err(|e| describe(&e, "t.lua"))?;
        sb.call::<_, mlua::Value>(&f, ())
            .map_err(|e| describe(&e, "t.lua"))
    }

    #[test]
    fn escapes_are_refused() {
        for (src, want) in [
            (
                "return io.open('/etc/passwd')",
                "t.lua:1: attempt to index a nil value (global 'io')",
            ),
            (
                "return os.execute('true')",
                "t.lua:1: attempt to index a nil value (global 'os')",
            ),
            (
                "return require('os')",
                "t.lua:1: attempt to call a nil value (global 'require')",
            ),
            (
                "return load('return 1')()",
                "t.lua:1: attempt to call a nil value (global 'load')",
            ),
            (
                "return dofile('/etc/passwd')",
                "t.lua:1: attempt to call a nil value (global 'dofile')",
            ),
            (
                "return debug.getinfo(1)",
                "t.lua:1: attempt to index a nil value (global 'debug')",
            ),
            (
                "return string.dump(print)",
                "t.lua:1: attempt to call a nil value (field 'dump')",
            ),
        ] {
            assert_eq!(run(src).unwrap_err(), want, "{src}");
        }
    }

    #[test]
    fn runaway_calls_fail_and_the_state_lives_on() {
        let sb = Sandbox::new(1).unwrap();
        let lp = sb
            .compile("t.lua", "local i = 0\nwhile true do\n  i = i + 1\nend")
            .unwrap();
        let e = describe(&sb.call::<_, ()>(&lp, ()).unwrap_err(), "t.lua");
        assert!(
            e.starts_with("t.lua:") && e.contains("instruction budget of 1000000 exceeded"),
            "{e}"
        );
        let bomb = sb
            .compile("t.lua", "local s = string.rep('x', 1 << 20)\nlocal t = {}\nfor i = 1, 64 do t[i] = s .. i end\nreturn #t")
            .unwrap();
        let e = describe(&sb.call::<_, ()>(&bomb, ()).unwrap_err(), "t.lua");
        assert_eq!(e, "t.lua: memory limit of 16 MiB exceeded");
        let big = sb
            .compile("t.lua", "return #string.rep('x', 1 << 30)")
            .unwrap();
        assert!(sb.call::<_, i64>(&big, ()).is_err());
        // The next call has its full budget again.
        let ok = sb
            .compile(
                "t.lua",
                "local n = 0 for i = 1, 100000 do n = n + i end return n",
            )
            .unwrap();
        assert_eq!(sb.call::<_, i64>(&ok, ()).unwrap(), 5_000_050_000);
    }

    #[test]
    fn random_is_seeded() {
        let a = run("return math.random(1, 1000000)").unwrap();
        let b = run("return math.random(1, 1000000)").unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert!(run("math.randomseed(1)").is_err());
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let sb = Sandbox::new(1).unwrap();
        let e = sb
            .compile("policies/x.lua", "local a = 1\nif a > then end")
            .unwrap_err();
        let m = describe(&e, "policies/x.lua");
        assert_eq!(m, "policies/x.lua:2: unexpected symbol near 'then'");
        assert_eq!(line_of(&m, "policies/x.lua"), Some(2));
    }
}
