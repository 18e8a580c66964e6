//! Agent config files from bytes, through `meridian_config::validate_text`: what
//! `meridian validate FILE` and `-config-file` run once the file is read. JSON (serde_json)
//! or HCL (hcl-rs) parsing, the Consul-key translation that strips inert keys
//! (`consul_keys`), the typed check that names the bad key and line, figment extraction,
//! normalization and `Config::validate`. The first byte picks the format.
//!
//! Asserts: nothing panics (errors are `ConfigError`s with a message); a config accepted
//! once is accepted again (parsing is deterministic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_config::validate_text;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // Config files are read with `read_to_string`: non-UTF-8 never reaches the parsers.
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let hcl = pick & 1 == 1;
    match validate_text(text, hcl) {
        Ok(cfg) => {
            let again = validate_text(text, hcl).expect("accepted once, accepted again");
            assert_eq!(again.node_name, cfg.node_name);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
