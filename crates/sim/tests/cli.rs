//! The `tafel-sim` command, as an operator runs it.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn tafel_sim(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tafel-sim"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAFEL_")) {
        cmd.env_remove(k);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn simulate_ade_takes_reset_ipads_to_device_configured() {
    let dir = tempfile::tempdir().unwrap();
    let o = tafel_sim(
        dir.path(),
        &[
            "simulate",
            "--ade",
            "-n",
            "3",
            "-c",
            "3",
            "--shared-key",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["configured"], 3, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["sync_devices"], 3, "{s}");
    // Wi-Fi, Keynote, its first inventory (4), DeviceConfigured; and the question how
    // Keynote's install went, unless the inventory's InstalledApplicationList already
    // reported it installed (which comes first depends on the reconciler's timing).
    let per_device = s["commands_per_device"].as_f64().unwrap();
    assert!((7.0..=8.0).contains(&per_device), "{s}");
    assert!(stderr(&o).contains("3/3 iPads through Setup Assistant"));
}

#[test]
fn help_names_both_commands() {
    let dir = tempfile::tempdir().unwrap();
    let o = tafel_sim(dir.path(), &["--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("simulate") && help.contains("bench"),
        "{help}"
    );
}
