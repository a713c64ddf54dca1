//! What `scripts/install.sh` gives people: `berth completion bash|zsh|fish` scripts that really
//! complete in those shells, one man page per verb that renders without a warning, both generated
//! by `berth-docs` from berth's own clap definitions; berth without its generator says what is
//! missing; `berth man --dir` never writes through a symlink planted in the directory.

use kit::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The generator binary cargo built beside berth.
const DOCS: &str = env!("CARGO_BIN_EXE_berth-docs");

/// A prefix installed by `scripts/install.sh --prefix P --from DIR` (DIR holding this build's berth
/// and berth-docs), as a user would install it.
struct Installed {
    _tmp: tempfile::TempDir,
    prefix: PathBuf,
}

impl Installed {
    fn new() -> Installed {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("from");
        std::fs::create_dir(&from).unwrap();
        std::fs::copy(BERTH, from.join("berth")).unwrap();
        std::fs::copy(DOCS, from.join("berth-docs")).unwrap();
        let prefix = tmp.path().join("prefix");
        let o = Command::new(repo().join("scripts/install.sh"))
            .arg("--prefix")
            .arg(&prefix)
            .arg("--from")
            .arg(&from)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&o);
        Installed { _tmp: tmp, prefix }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.prefix.join(rel)
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(self.path("bin/berth"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// The verbs `berth --help` lists (clap's own `help` aside).
fn verbs(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| *v != "help")
        .map(str::to_string)
        .collect()
}

fn shell(prog: &Path, args: &[&str]) -> String {
    ok(&Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap())
}

#[test]
fn installed_completions_complete_verbs_and_flags_in_bash_zsh_and_fish() {
    let i = Installed::new();
    // What `berth completion SHELL` prints is what was installed.
    for (sh, rel) in [
        ("bash", "share/bash-completion/completions/berth"),
        ("zsh", "share/zsh/site-functions/_berth"),
        ("fish", "share/fish/vendor_completions.d/berth.fish"),
    ] {
        let printed = ok(&i.berth(&["completion", sh]));
        assert_eq!(
            printed,
            std::fs::read_to_string(i.path(rel)).unwrap(),
            "{sh}"
        );
    }
    // bash: the completion function, called as bash-completion calls it.
    let bash_file = i.path("share/bash-completion/completions/berth");
    let complete = |words: &str, cword: usize| {
        let script = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; \
             _berth berth \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bash_file.display()
        );
        shell(Path::new("bash"), &["-c", &script])
    };
    assert_eq!(complete("berth ru", 1).trim(), "run");
    assert!(
        complete("berth run --ro", 2)
            .lines()
            .any(|l| l == "--rootfs")
    );
    let shells = complete("berth completion ''", 2);
    let shells: Vec<&str> = shells
        .split_whitespace()
        .filter(|w| !w.starts_with('-'))
        .collect();
    assert_eq!(shells, ["bash", "zsh", "fish"]);
    // fish: `complete -C` asks fish's own completion engine.
    if let Some(fish) = tool("fish") {
        let f = i.path("share/fish/vendor_completions.d/berth.fish");
        let src = format!("source '{}'", f.display());
        let verbs = shell(
            &fish,
            &[
                "--no-config",
                "-c",
                &format!("{src}; complete -C 'berth ru'"),
            ],
        );
        assert!(verbs.lines().any(|l| l.starts_with("run\t")), "{verbs}");
        let flags = shell(
            &fish,
            &[
                "--no-config",
                "-c",
                &format!("{src}; complete -C 'berth exec --tt'"),
            ],
        );
        assert!(flags.lines().any(|l| l.starts_with("--tty")), "{flags}");
    }
    // zsh: an interactive zsh on a pseudo-terminal (zsh/zpty) with the installed directory in
    // $fpath and compinit loaded, typing `berth ru<TAB>`; it completes to `berth run` only through
    // _berth (without the fpath entry zsh rings the bell instead).
    if let Some(zsh) = tool("zsh") {
        let dir = i.path("share/zsh/site-functions");
        let cache = i.path("zcompdump");
        let script = format!(
            r#"zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "fpath=({} \$fpath); autoload -U compinit; compinit -u -d {}; PS1='> '"
zpty -w -n z $'berth ru\t'
out=""
for i in {{1..100}}; do
  zpty -r -t z chunk && out+=$chunk
  [[ $out == *"berth run"* ]] && break
  sleep 0.1
done
zpty -d z
[[ $out == *"berth run"* ]] && print completed"#,
            dir.display(),
            cache.display()
        );
        assert_eq!(shell(&zsh, &["-f", "-c", &script]).trim(), "completed");
    }
}

#[test]
fn one_man_page_per_verb_rendering_without_warnings() {
    let i = Installed::new();
    let help = ok(&i.berth(&["--help"]));
    let mut want: Vec<String> = verbs(&help)
        .iter()
        .map(|v| format!("berth-{v}.1"))
        .collect();
    want.push("berth.1".into());
    want.sort();
    assert!(want.len() > 15, "{want:?}");
    let man = i.path("share/man/man1");
    let mut have: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    have.sort();
    assert_eq!(have, want);
    for page in &have {
        let p = man.join(page);
        // groff with every warning on (-ww), output discarded: any warning fails the page.
        let o = Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{page}: {}",
            stderr(&o)
        );
    }
    // man(1) finds them by name under the prefix and shows each verb's own options.
    let render = |name: &str| {
        let o = Command::new("man")
            .args(["-P", "cat", name])
            .env("MANPATH", i.path("share/man"))
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        ok(&o)
    };
    let run = render("berth-run");
    assert!(
        run.contains("--rootfs") && run.contains("--volume"),
        "{run}"
    );
    let exec = render("berth-exec");
    assert!(
        exec.contains("--tty") && !exec.contains("--rootfs"),
        "{exec}"
    );
    assert!(render("berth").contains("--systemd-cgroup"));
    // `berth man` alone prints berth.1.
    let page = ok(&i.berth(&["man"]));
    assert!(
        page.starts_with(".ie") && page.contains(".TH berth 1"),
        "{page}"
    );
}

#[test]
fn berth_without_its_generator_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let lone = tmp.path().join("berth");
    std::fs::copy(BERTH, &lone).unwrap();
    for args in [&["completion", "bash"][..], &["man"][..]] {
        let o = Command::new(&lone).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        let docs = tmp.path().join("berth-docs");
        assert!(
            err.contains(&format!("{}", docs.display()))
                && err.contains("ENOENT")
                && err.contains("scripts/install.sh"),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
    // A bad shell is clap's usage error (2), naming the choices.
    let o = Command::new(&lone)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bash, zsh, fish"), "{}", stderr(&o));
}

#[test]
fn man_dir_replaces_planted_symlinks_and_never_writes_through_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    // Decoys the symlinks point at: a file with content, and a path that must never come to exist.
    let decoy = tmp.path().join("decoy");
    std::fs::write(&decoy, "decoy\n").unwrap();
    let never = tmp.path().join("never");
    std::os::unix::fs::symlink(&decoy, dir.join("berth-run.1")).unwrap();
    std::os::unix::fs::symlink(&never, dir.join("berth.1")).unwrap();
    let o = Command::new(DOCS)
        .arg("man")
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "decoy\n");
    assert!(!never.exists());
    for page in ["berth-run.1", "berth.1"] {
        let m = std::fs::symlink_metadata(dir.join(page)).unwrap();
        assert!(m.file_type().is_file(), "{page} is {:?}", m.file_type());
    }
    // No temporary file is left.
    let stray: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    // A directory that is not there: the error names it, and nothing is made.
    let missing = tmp.path().join("missing");
    let o = Command::new(DOCS)
        .arg("man")
        .arg("--dir")
        .arg(&missing)
        .output()
        .unwrap();
    let err = fails(&o);
    assert!(
        err.contains(&format!("{}", missing.display())) && err.contains("ENOENT"),
        "{err}"
    );
    assert!(!missing.exists());
}
