//! Fork rules: which revm spec applies to a block, its blob parameters, and the chain's reward
//! schedule.

use crate::error::EngineError;
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::U256;
use revm::primitives::hardfork::SpecId;
use serde::Deserialize;

/// Where the fork schedule comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Ethereum mainnet's forks by block number and timestamp.
    Mainnet,
    /// One hardfork from genesis (anvil, generated blocks, test chains).
    Fixed(SpecId),
}

/// The chain a block belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    pub chain_id: u64,
    pub schedule: Schedule,
}

impl Default for ChainSpec {
    fn default() -> Self {
        Self::mainnet()
    }
}

/// `chain.json`: `{ "chainId": 31337, "hardfork": "cancun" }`; both fields optional.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChainJson {
    #[serde(default)]
    chain_id: Option<u64>,
    #[serde(default)]
    hardfork: Option<String>,
}

const MAINNET_BLOCK_FORKS: &[(u64, SpecId)] = &[
    (15_537_394, SpecId::MERGE),
    (12_965_000, SpecId::LONDON),
    (12_244_000, SpecId::BERLIN),
    (9_069_000, SpecId::ISTANBUL),
    (7_280_000, SpecId::PETERSBURG),
    (4_370_000, SpecId::BYZANTIUM),
    (2_675_000, SpecId::SPURIOUS_DRAGON),
    (2_463_000, SpecId::TANGERINE),
    (1_150_000, SpecId::HOMESTEAD),
    (0, SpecId::FRONTIER),
];

/// Fusaka (Osaka) activated at epoch 411,392 (2025-12-03); its blob-parameter-only forks
/// (EIP-7892) BPO1 and BPO2 follow it below, changing only the blob schedule.
const MAINNET_TIME_FORKS: &[(u64, SpecId)] =
    &[(1_764_798_551, SpecId::OSAKA), (1_746_612_311, SpecId::PRAGUE), (1_710_338_135, SpecId::CANCUN), (1_681_338_455, SpecId::SHANGHAI)];

/// Mainnet's blob-parameter-only forks (EIP-7892) by timestamp, newest first: BPO2 (epoch
/// 419,072) and BPO1 (epoch 412,672) raised the blob target and the base fee's update fraction
/// after Osaka. Before them, a fork's own parameters apply.
const MAINNET_BPO_FORKS: &[(u64, BlobParams)] = &[(1_767_747_671, BlobParams::bpo2()), (1_765_290_071, BlobParams::bpo1())];

/// A fork's own blob parameters (before any blob-parameter-only fork); none before Cancun.
fn blob_params_of(spec: SpecId) -> Option<BlobParams> {
    if spec.is_enabled_in(SpecId::OSAKA) {
        Some(BlobParams::osaka())
    } else if spec.is_enabled_in(SpecId::PRAGUE) {
        Some(BlobParams::prague())
    } else if spec.is_enabled_in(SpecId::CANCUN) {
        Some(BlobParams::cancun())
    } else {
        None
    }
}

impl ChainSpec {
    pub fn mainnet() -> Self {
        Self { chain_id: 1, schedule: Schedule::Mainnet }
    }

    pub fn fixed(chain_id: u64, spec: SpecId) -> Self {
        Self { chain_id, schedule: Schedule::Fixed(spec) }
    }

    /// Parses `chain.json`. A missing hardfork means mainnet's schedule.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EngineError> {
        let parsed: ChainJson = serde_json::from_slice(bytes).map_err(|e| EngineError::InvalidInput(format!("chain spec: {e}")))?;
        let chain_id = parsed.chain_id.unwrap_or(1);
        match parsed.hardfork {
            None => Ok(Self { chain_id, schedule: Schedule::Mainnet }),
            Some(name) => Ok(Self::fixed(chain_id, parse_hardfork(&name)?)),
        }
    }

    /// The spec in force for a block.
    pub fn spec_at(&self, number: u64, timestamp: u64) -> SpecId {
        match self.schedule {
            Schedule::Fixed(spec) => spec,
            Schedule::Mainnet => {
                if number >= 15_537_394 {
                    if let Some((_, spec)) = MAINNET_TIME_FORKS.iter().find(|(t, _)| timestamp >= *t) {
                        return *spec;
                    }
                }
                MAINNET_BLOCK_FORKS.iter().find(|(n, _)| number >= *n).map(|(_, s)| *s).unwrap_or(SpecId::FRONTIER)
            }
        }
    }

    /// The blob parameters in force for a block: the blob base fee's update fraction and the
    /// most blobs a transaction may carry. None before Cancun.
    pub fn blob_params_at(&self, number: u64, timestamp: u64) -> Option<BlobParams> {
        let own = blob_params_of(self.spec_at(number, timestamp))?;
        let bpo = match self.schedule {
            Schedule::Fixed(_) => None,
            Schedule::Mainnet => MAINNET_BPO_FORKS.iter().find(|(t, _)| timestamp >= *t).map(|(_, p)| *p),
        };
        Some(bpo.unwrap_or(own))
    }

    /// Proof-of-work block reward for the miner (zero from the Merge).
    pub fn block_reward(spec: SpecId) -> U256 {
        const ETH: u128 = 1_000_000_000_000_000_000;
        if spec.is_enabled_in(SpecId::MERGE) {
            U256::ZERO
        } else if spec.is_enabled_in(SpecId::PETERSBURG) {
            U256::from(2 * ETH)
        } else if spec.is_enabled_in(SpecId::BYZANTIUM) {
            U256::from(3 * ETH)
        } else {
            U256::from(5 * ETH)
        }
    }
}

/// Hardfork names as written in `chain.json` (case-insensitive; common aliases accepted).
pub fn parse_hardfork(name: &str) -> Result<SpecId, EngineError> {
    let spec = match name.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
        "frontier" => SpecId::FRONTIER,
        "homestead" => SpecId::HOMESTEAD,
        "tangerine" | "tangerinewhistle" | "eip150" => SpecId::TANGERINE,
        "spuriousdragon" | "eip158" | "eip155" => SpecId::SPURIOUS_DRAGON,
        "byzantium" => SpecId::BYZANTIUM,
        "constantinople" | "petersburg" | "constantinoplefix" => SpecId::PETERSBURG,
        "istanbul" | "muirglacier" => SpecId::ISTANBUL,
        "berlin" => SpecId::BERLIN,
        "london" | "arrowglacier" | "grayglacier" => SpecId::LONDON,
        "merge" | "paris" => SpecId::MERGE,
        "shanghai" => SpecId::SHANGHAI,
        "cancun" => SpecId::CANCUN,
        "prague" | "pectra" => SpecId::PRAGUE,
        "osaka" | "fusaka" => SpecId::OSAKA,
        _ => {
            return Err(EngineError::InvalidInput(format!("unknown hardfork '{name}' (expected one of frontier … cancun, prague, osaka)")))
        }
    };
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_schedule_matches_fork_blocks() {
        let c = ChainSpec::mainnet();
        assert_eq!(c.spec_at(46147, 0), SpecId::FRONTIER);
        assert_eq!(c.spec_at(1_150_000, 0), SpecId::HOMESTEAD);
        assert_eq!(c.spec_at(2_674_999, 0), SpecId::TANGERINE);
        assert_eq!(c.spec_at(4_370_000, 0), SpecId::BYZANTIUM);
        assert_eq!(c.spec_at(15_537_393, 1_663_224_162), SpecId::LONDON);
        assert_eq!(c.spec_at(15_537_394, 1_663_224_179), SpecId::MERGE);
        assert_eq!(c.spec_at(17_034_870, 1_681_338_455), SpecId::SHANGHAI);
        assert_eq!(c.spec_at(19_426_587, 1_710_338_135), SpecId::CANCUN);
        assert_eq!(c.spec_at(22_431_083, 1_746_612_299), SpecId::CANCUN);
        assert_eq!(c.spec_at(22_431_084, 1_746_612_311), SpecId::PRAGUE);
        assert_eq!(c.spec_at(23_935_693, 1_764_798_539), SpecId::PRAGUE);
        assert_eq!(c.spec_at(23_935_694, 1_764_798_551), SpecId::OSAKA);
    }

    #[test]
    fn mainnet_blob_schedule_follows_the_blob_parameter_forks() {
        let c = ChainSpec::mainnet();
        let fraction = |t: u64| c.blob_params_at(24_000_000, t).map(|p| p.update_fraction);
        assert_eq!(c.blob_params_at(19_000_000, 1_700_000_000), None);
        assert_eq!(c.blob_params_at(19_426_587, 1_710_338_135).unwrap().max_blobs_per_tx, 6);
        assert_eq!(c.blob_params_at(22_431_084, 1_746_612_311).unwrap().max_blobs_per_tx, 9);
        assert_eq!(fraction(1_746_612_311), Some(5_007_716));
        // Osaka caps a transaction at 6 blobs (EIP-7594) and keeps Prague's fraction.
        assert_eq!(c.blob_params_at(23_935_694, 1_764_798_551).unwrap().max_blobs_per_tx, 6);
        assert_eq!(fraction(1_764_798_551), Some(5_007_716));
        assert_eq!(fraction(1_765_290_070), Some(5_007_716));
        assert_eq!(fraction(1_765_290_071), Some(8_346_193));
        assert_eq!(fraction(1_767_747_671), Some(11_684_671));
        // A fixed fork uses its own parameters.
        assert_eq!(ChainSpec::fixed(1, SpecId::OSAKA).blob_params_at(0, 0), Some(BlobParams::osaka()));
        assert_eq!(ChainSpec::fixed(1, SpecId::SHANGHAI).blob_params_at(0, 0), None);
    }

    #[test]
    fn chain_json_parses_and_rejects() {
        let c = ChainSpec::from_json(br#"{ "chainId": 31337, "hardfork": "cancun" }"#).unwrap();
        assert_eq!(c, ChainSpec::fixed(31337, SpecId::CANCUN));
        let c = ChainSpec::from_json(br#"{ "hardfork": "Fusaka" }"#).unwrap();
        assert_eq!(c, ChainSpec::fixed(1, SpecId::OSAKA));
        assert!(ChainSpec::from_json(br#"{ "hardfork": "nope" }"#).is_err());
        assert!(ChainSpec::from_json(b"{").is_err());
    }
}
