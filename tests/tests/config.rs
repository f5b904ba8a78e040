//! Bad configuration through the binaries themselves: each is refused at start with a
//! non-zero exit and a message that names what is wrong, before anything is written or served.

use std::path::Path;
use std::process::Command;

use primitives::crypto::SecretKey;
use primitives::types::Address;
use twinpeg_e2e::{bin, pegged_geneses, test_peg};

/// Runs `cmd`; returns its stderr, asserting a non-zero exit.
fn refused(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "{cmd:?} accepted it:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn init(dir: &Path, genesis: &str) -> Command {
    let path = dir.join("genesis.toml");
    std::fs::write(&path, genesis).expect("write genesis");
    let mut c = Command::new(bin("mainchain"));
    c.args(["init", "--genesis"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"));
    c
}

#[test]
fn a_genesis_with_an_impossible_federation_is_refused_by_init() {
    let dir = tempfile::tempdir().expect("tempdir");
    let members: Vec<Address> = (0..3).map(|_| SecretKey::random().address()).collect();
    let genesis = |members: &[Address], threshold: u32| {
        let (main, _) = pegged_geneses(
            SecretKey::random().address(),
            SecretKey::random().address(),
            test_peg(members, threshold),
            300,
            200,
        );
        toml::to_string(&main).expect("genesis serialises")
    };
    for (what, text, says) in [
        ("M = 0", genesis(&members, 0), "threshold 0"),
        ("M > N", genesis(&members, 4), "threshold 4 of 3"),
        (
            "a member listed twice",
            genesis(&[members[0], members[1], members[0]], 2),
            "listed twice",
        ),
        (
            "a zero member",
            genesis(&[members[0], Address::default(), members[1]], 2),
            "zero",
        ),
        (
            "an unknown key",
            genesis(&members, 2).replace("[peg]\n", "[peg]\nsurprise = 1\n"),
            "surprise",
        ),
    ] {
        let err = refused(&mut init(dir.path(), &text));
        assert!(err.contains(says), "{what}: {err}");
        assert!(
            !dir.path().join("data").exists(),
            "{what}: init wrote a data dir for a genesis it refused"
        );
    }
}

#[test]
fn a_node_or_member_config_with_an_unknown_key_or_no_data_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = dir.path().join("node.toml");
    std::fs::write(&node, "rpc_adr = \"127.0.0.1:0\"\n").expect("write");
    let err = refused(
        Command::new(bin("sidechain"))
            .arg("run")
            .arg("--config")
            .arg(&node),
    );
    assert!(err.contains("rpc_adr"), "{err}");

    // A node pointed at a data dir nobody initialised says so, rather than starting empty.
    let err = refused(
        Command::new(bin("mainchain"))
            .arg("run")
            .arg("--data-dir")
            .arg(dir.path().join("nothing-here"))
            .args([
                "--rpc-addr",
                "127.0.0.1:0",
                "--p2p-listen",
                "/ip4/127.0.0.1/tcp/0",
            ]),
    );
    assert!(err.to_lowercase().contains("init"), "{err}");

    let member = dir.path().join("member.toml");
    std::fs::write(
        &member,
        "main_rpc = \"http://127.0.0.1:1\"\nthreshhold = 2\n",
    )
    .expect("write");
    let err = refused(
        Command::new(bin("bridge"))
            .arg("run")
            .arg("--config")
            .arg(&member),
    );
    assert!(err.contains("threshhold"), "{err}");
}
