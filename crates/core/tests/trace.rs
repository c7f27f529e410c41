//! Parallel tracing equals sequential tracing, and both equal reth's way of tracing a block
//! (one EVM over a cached state, each transaction inspected then committed), for every tracer,
//! on mainnet fixtures (Homestead to Cancun, the 4788 call included) and generated blocks that
//! run on every engine (Block-STM with lazy updates, transfer groups, guessed groups).

mod common;

use parallel_evm_core::{
    execute_block,
    trace::{execute_block_traced, trace_block_in_order, TraceConfig},
    BlockInput, ChainSpec, Engine, ExecuteOptions, ModeRequest, Storage,
};
use parallel_evm_testkit::{fixture::Fixture, fuzz, generate};

/// The engines the traced runs used (the generated blocks must cover them all).
static ENGINES: std::sync::Mutex<Vec<parallel_evm_core::Engine>> = std::sync::Mutex::new(Vec::new());

const CONFIGS: [&str; 7] = [
    r#"{"tracer":"callTracer"}"#,
    r#"{"tracer":"callTracer","tracerConfig":{"withLog":true}}"#,
    r#"{"tracer":"callTracer","tracerConfig":{"onlyTopCall":true}}"#,
    r#"{"tracer":"prestateTracer"}"#,
    r#"{"tracer":"prestateTracer","tracerConfig":{"diffMode":true}}"#,
    r#"{"tracer":"flatCallTracer"}"#,
    r#"{"tracer":"4byteTracer"}"#,
];

fn options(chain: &ChainSpec, mode: ModeRequest, threads: usize) -> ExecuteOptions {
    ExecuteOptions { chain: chain.clone(), mode, threads, receipts_root: false }
}

/// Every config: sequential and parallel tracing at 1, 2 and 4 threads equal reth's way, and a
/// traced execution's result equals the untraced one.
/// Returns whether the block was valid (and traced).
fn check_block(name: &str, block: &BlockInput, state: &dyn Storage, chain: &ChainSpec) -> bool {
    let untraced = match execute_block(block, state, &options(chain, ModeRequest::Sequential, 1)) {
        Ok(r) => r,
        Err(e) => {
            // An invalid block (some fuzz seeds) fails alike when traced.
            let config = TraceConfig::from_json(CONFIGS[0].as_bytes()).unwrap();
            for (mode, threads) in [(ModeRequest::Sequential, 1), (ModeRequest::Parallel, 2)] {
                let got = execute_block_traced(block, state, &options(chain, mode, threads), &config).map(|_| ()).unwrap_err();
                assert_eq!(got, e, "{name}: traced and untraced errors differ");
            }
            return false;
        }
    };
    for json in CONFIGS {
        let config = TraceConfig::from_json(json.as_bytes()).unwrap();
        let want_json = serde_json::to_string(&trace_block_in_order(block, state, chain, &config).unwrap()).unwrap();
        let want: serde_json::Value = serde_json::from_str(&want_json).unwrap();
        assert_eq!(want.as_array().unwrap().len(), block.txs.len());
        for (mode, threads) in [
            (ModeRequest::Sequential, 1),
            (ModeRequest::Parallel, 1),
            (ModeRequest::Parallel, 2),
            (ModeRequest::Parallel, 4),
            (ModeRequest::Auto, 2),
        ] {
            let (result, traces) = execute_block_traced(block, state, &options(chain, mode, threads), &config)
                .unwrap_or_else(|e| panic!("{name} {json} {mode:?} {threads}: {e}"));
            assert!(result.same_outcome(&untraced), "{name} {json} {mode:?} {threads}: the traced execution's result differs");
            ENGINES.lock().unwrap().push(result.stats.engine);
            // Byte for byte: the JSON a caller gets.
            let got_json = serde_json::to_string(&traces).unwrap();
            if got_json != want_json {
                let got: serde_json::Value = serde_json::from_str(&got_json).unwrap();
                let i = (0..block.txs.len()).find(|&i| got[i] != want[i]).unwrap_or(0);
                panic!(
                    "{name} {json} {mode:?} {threads} threads ({:?}): transaction {i} differs\n got: {}\nwant: {}",
                    result.stats.engine, got[i], want[i]
                );
            }
        }
    }
    true
}

#[test]
fn mainnet_fixtures_trace_alike_in_parallel_and_sequentially() {
    let Some(dir) = common::mainnet_dir() else {
        eprintln!("skipped: ../shared/fixtures/mainnet is absent");
        return;
    };
    // Homestead, Byzantium, Istanbul, Berlin, the Merge, Cancun (beacon-roots call).
    for number in ["2179522", "4370000", "9069000", "12244000", "15537394", "19426587"] {
        let fx = Fixture::load(&dir.join(number), None).unwrap();
        assert!(check_block(number, &fx.block, &fx.state, &fx.chain));
    }
}

#[test]
fn generated_blocks_trace_alike_on_every_engine() {
    use revm::primitives::hardfork::SpecId;
    for g in [
        generate::mixed(7, 200, SpecId::CANCUN),
        generate::mixed(8, 150, SpecId::SHANGHAI),
        generate::mixed(9, 100, SpecId::BYZANTIUM),
        generate::token_transfers(3, 300, 4),
        generate::transfers_to_one(3, 200),
        generate::independent_transfers(3, 300),
    ] {
        assert!(check_block(&g.name, &g.block, &g.state, &g.chain), "{}", g.name);
    }
    // Transfers of a token between many holders: the guessed-groups engine takes them.
    let g = generate::token_transfers(4, 300, 0);
    assert!(check_block(&g.name, &g.block, &g.state, &g.chain));
    let traced = (0..16).filter(|&seed| {
        let g = fuzz::block_from_seed(seed);
        check_block(&g.name, &g.block, &g.state, &g.chain)
    });
    assert!(traced.count() >= 8, "most fuzz blocks are valid and traced");
    let engines = ENGINES.lock().unwrap();
    for engine in [Engine::Sequential, Engine::BlockStm, Engine::TransferGroups, Engine::GuessedGroups] {
        assert!(engines.contains(&engine), "no traced run on {engine:?}");
    }
}

/// Where the engine runs each transaction once on its final pre-state (sequential execution,
/// transfer and guessed groups), call, flat-call and 4-byte traces come from that run; Block-STM
/// blocks and the prestate tracer are traced after the run (the traces themselves are checked
/// above, on the same engines).
#[test]
fn traces_come_from_the_run_where_the_engine_executes_once() {
    use parallel_evm_core::engine::hybrid::{execute_block_for_tracing, Traced};
    use revm::primitives::hardfork::SpecId;
    let tokens = generate::token_transfers(4, 300, 0);
    let transfers = generate::independent_transfers(3, 300);
    let mixed = generate::mixed(7, 200, SpecId::CANCUN);
    let config = |json: &str| TraceConfig::from_json(json.as_bytes()).unwrap();
    let cases = [
        (&tokens, ModeRequest::Parallel, CONFIGS[0], Engine::GuessedGroups, true),
        (&tokens, ModeRequest::Parallel, CONFIGS[5], Engine::GuessedGroups, true),
        (&tokens, ModeRequest::Parallel, CONFIGS[6], Engine::GuessedGroups, true),
        (&tokens, ModeRequest::Parallel, CONFIGS[3], Engine::GuessedGroups, false),
        (&tokens, ModeRequest::Sequential, CONFIGS[1], Engine::Sequential, true),
        (&tokens, ModeRequest::Sequential, CONFIGS[4], Engine::Sequential, false),
        (&transfers, ModeRequest::Parallel, CONFIGS[0], Engine::TransferGroups, true),
        (&mixed, ModeRequest::Parallel, CONFIGS[0], Engine::BlockStm, false),
        // Auto mode on 2 threads traces a Block-STM block in one sequential pass instead.
        (&mixed, ModeRequest::Auto, CONFIGS[0], Engine::Sequential, true),
        (&mixed, ModeRequest::Auto, CONFIGS[3], Engine::BlockStm, false),
    ];
    let untraced = execute_block(&mixed.block, &mixed.state, &options(&mixed.chain, ModeRequest::Auto, 2)).unwrap();
    assert_eq!(untraced.stats.engine, Engine::BlockStm, "auto mode runs {} on Block-STM untraced", mixed.name);
    for (g, mode, json, engine, in_run) in cases {
        let (result, traced) = execute_block_for_tracing(&g.block, &g.state, &options(&g.chain, mode, 2), config(json).options()).unwrap();
        assert_eq!(result.stats.engine, engine, "{} {json}", g.name);
        match traced {
            Traced::InRun(traces) => {
                assert!(in_run, "{} {json}: traced in the run", g.name);
                assert_eq!(traces.unwrap().len(), g.block.txs.len());
            }
            Traced::Writes(writes) => {
                assert!(!in_run, "{} {json}: not traced in the run", g.name);
                assert_eq!(writes.len(), g.block.txs.len());
            }
        }
    }
}

#[test]
fn bad_configs_are_typed_input_errors() {
    for (json, why) in [
        (r#"{"tracer":"nope"}"#, "unsupported tracer"),
        (r#"{"tracer":"muxTracer"}"#, "unsupported tracer"),
        (r#"{}"#, "no tracer"),
        (r#"{"tracer":"callTracer","tracerConfig":{"onlyTopCall":"yes"}}"#, "trace config"),
        (r#"[1]"#, "trace config"),
    ] {
        let e = TraceConfig::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "INVALID_INPUT", "{json}");
        assert!(e.to_string().contains(why), "{json}: {e}");
    }
}
