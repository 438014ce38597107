//! Build facts for `statescope_build_info`: the source revision and the
//! compiler's version, as prometheus/common's build_info carries them.
//!
//! The revision is `STATESCOPE_REVISION` when set (a Docker build has no
//! `.git`), else `git rev-parse`, else "unknown".

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=STATESCOPE_REVISION");
    let revision = std::env::var("STATESCOPE_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // Rebuild when HEAD moves (a checkout or a commit), not on every build.
    // Only paths that exist: cargo reruns a build script that watches a
    // missing file on every build (packed-refs is often absent).
    for git_path in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(path) = output("git", &["rev-parse", "--git-path", git_path])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustversion = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=STATESCOPE_REVISION={revision}");
    println!("cargo:rustc-env=STATESCOPE_RUSTC_VERSION={rustversion}");
}
