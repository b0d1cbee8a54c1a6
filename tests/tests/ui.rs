//! Compile-time behaviour of the derives: every mistake in `ui/<derive>/` is
//! rejected with the checked `.stderr`, every shape in `ui-pass/` compiles.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p
//! cqrs-tests --test ui`, then read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/*.rs");
    t.pass("ui-pass/*.rs");
}

/// One mistake, one error: every `.stderr` holds exactly one error.
#[test]
fn every_ui_case_gives_one_error() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for derive in std::fs::read_dir(&root).expect("tests/ui exists") {
        let derive = derive.expect("a directory entry").path();
        for case in std::fs::read_dir(&derive).expect("a derive's directory") {
            let path = case.expect("a directory entry").path();
            if path.extension().is_none_or(|e| e != "stderr") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable .stderr");
            let errors = text
                .lines()
                .filter(|line| line.starts_with("error[") || line.starts_with("error:"))
                .count();
            checked += 1;
            if errors != 1 {
                wrong.push(format!("{} holds {errors} errors", path.display()));
            }
        }
    }
    assert!(checked >= 130, "only {checked} .stderr files found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
