//! Opt-in signature verification (`BlockInput::from_json_verified`): every transaction of every
//! mainnet fixture block recovers to its `from` (legacy before and after EIP-155, access-list,
//! fee-market and blob transactions); a `from` that does not match, or a tampered signature, is
//! an invalid transaction at its index.

mod common;

use parallel_evm_core::{block::chain::ChainSpec, block::BlockInput, EngineError};

fn fixtures() -> Vec<std::path::PathBuf> {
    let Some(dir) = common::mainnet_dir() else {
        println!("SKIPPED: ../shared/fixtures/mainnet not found; signatures of real blocks not checked");
        return Vec::new();
    };
    common::fixture_dirs(&dir)
}

#[test]
fn real_signatures_recover_to_their_senders() {
    let chain = ChainSpec::mainnet();
    for d in fixtures() {
        let bytes = std::fs::read(d.join("block.json")).unwrap();
        let verified = BlockInput::from_json_verified(&bytes, &chain).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        let plain = BlockInput::from_json(&bytes).unwrap();
        assert_eq!(verified.txs.len(), plain.txs.len());
    }
}

#[test]
fn a_mismatched_sender_or_signature_is_an_invalid_transaction() {
    let chain = ChainSpec::mainnet();
    let all = fixtures();
    let Some(d) = all.iter().find(|d| d.ends_with("19933612")) else {
        assert!(all.is_empty(), "fixture 19933612 missing");
        return;
    };
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("block.json")).unwrap()).unwrap();
    let tampered = |index: usize, field: &str, value: &str| {
        let mut block = original.clone();
        block["transactions"][index][field] = serde_json::Value::String(value.into());
        let bytes = serde_json::to_vec(&block).unwrap();
        // Unverified, the engine trusts `from` and parses the block as is.
        BlockInput::from_json(&bytes).unwrap();
        BlockInput::from_json_verified(&bytes, &chain).unwrap_err()
    };
    let other_sender = original["transactions"][3]["from"].as_str().unwrap().to_string();
    match tampered(7, "from", &other_sender) {
        EngineError::InvalidTransaction { index, reason, .. } => {
            assert_eq!(index, 7);
            assert!(reason.contains("recovers to"), "{reason}");
        }
        e => panic!("unexpected {e}"),
    }
    let s_high = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140";
    assert_eq!(tampered(40, "s", s_high).tx_index(), Some(40));
    assert_eq!(tampered(41, "r", "0x1").tx_index(), Some(41));
}
