//! EIP-7685 execution-layer requests (Prague): deposits read from the deposit contract's logs
//! (EIP-6110), then what the end-of-block calls to the withdrawal (EIP-7002) and consolidation
//! (EIP-7251) queues return. The header commits to them by `requestsHash`.

use crate::{block::chain::ChainSpec, error::EngineError, result::Receipt};
use alloy_eips::{
    eip6110::{DEPOSIT_REQUEST_TYPE, MAINNET_DEPOSIT_CONTRACT_ADDRESS},
    eip7002::WITHDRAWAL_REQUEST_TYPE,
    eip7251::CONSOLIDATION_REQUEST_TYPE,
    eip7685::Requests,
};
use alloy_primitives::{Bytes, B256};
use alloy_sol_types::SolEvent;

alloy_sol_types::sol! {
    /// The deposit contract's event (its ABI), one per deposit.
    event DepositEvent(bytes pubkey, bytes withdrawal_credentials, bytes amount, bytes signature, bytes index);
}

/// The byte lengths of a deposit's fields, in request order (EIP-6110).
const DEPOSIT_LAYOUT: [usize; 5] = [48, 32, 8, 96, 8];

/// The deposit requests' data: every deposit event's fields, concatenated in log order. `None`
/// where the chain's deposit contract is not known (only mainnet's is).
fn deposits(chain: &ChainSpec, receipts: &[Receipt]) -> Result<Option<Vec<u8>>, EngineError> {
    if chain.chain_id != 1 {
        return Ok(None);
    }
    let mut data = Vec::new();
    let logs = receipts.iter().flat_map(|r| &r.logs).filter(|l| l.address == MAINNET_DEPOSIT_CONTRACT_ADDRESS);
    for log in logs.filter(|l| l.topics().first() == Some(&DepositEvent::SIGNATURE_HASH)) {
        let event = DepositEvent::decode_log_data(&log.data)
            .map_err(|e| EngineError::InvalidBlock(format!("a deposit event that does not decode: {e}")))?;
        let fields = [&event.pubkey, &event.withdrawal_credentials, &event.amount, &event.signature, &event.index];
        if fields.iter().map(|f| f.len()).ne(DEPOSIT_LAYOUT) {
            return Err(EngineError::InvalidBlock("a deposit event whose fields have the wrong lengths (EIP-6110)".into()));
        }
        fields.iter().for_each(|f| data.extend_from_slice(f));
    }
    Ok(Some(data))
}

/// The block's `requestsHash`, from its receipts and the two queues' outputs (withdrawals, then
/// consolidations). `None` where the deposits cannot be read (an unknown deposit contract).
pub fn requests_hash(chain: &ChainSpec, receipts: &[Receipt], queues: [Bytes; 2]) -> Result<Option<B256>, EngineError> {
    let Some(deposits) = deposits(chain, receipts)? else {
        return Ok(None);
    };
    let [withdrawals, consolidations] = queues;
    let mut requests = Requests::default();
    requests.push_request_with_type(DEPOSIT_REQUEST_TYPE, deposits);
    requests.push_request_with_type(WITHDRAWAL_REQUEST_TYPE, withdrawals);
    requests.push_request_with_type(CONSOLIDATION_REQUEST_TYPE, consolidations);
    Ok(Some(requests.requests_hash()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
    use alloy_primitives::{Log, LogData};
    use alloy_sol_types::SolValue;

    fn receipt(logs: Vec<Log>) -> Receipt {
        Receipt {
            transaction_hash: B256::ZERO,
            transaction_index: 0,
            tx_type: 2,
            status: true,
            gas_used: 0,
            cumulative_gas_used: 0,
            logs,
            logs_bloom: Default::default(),
            contract_address: None,
        }
    }

    fn deposit_log(lengths: [usize; 5]) -> Log {
        let fields: Vec<Bytes> = lengths.iter().enumerate().map(|(i, n)| Bytes::from(vec![i as u8 + 1; *n])).collect();
        let data = (fields[0].clone(), fields[1].clone(), fields[2].clone(), fields[3].clone(), fields[4].clone()).abi_encode_params();
        Log { address: MAINNET_DEPOSIT_CONTRACT_ADDRESS, data: LogData::new_unchecked(vec![DepositEvent::SIGNATURE_HASH], data.into()) }
    }

    #[test]
    fn no_requests_hash_to_the_empty_requests_hash() {
        let hash = requests_hash(&ChainSpec::mainnet(), &[receipt(vec![])], [Bytes::new(), Bytes::new()]).unwrap();
        assert_eq!(hash, Some(EMPTY_REQUESTS_HASH));
    }

    #[test]
    fn deposits_and_queue_outputs_are_hashed_by_type() {
        let receipts = [receipt(vec![deposit_log(DEPOSIT_LAYOUT)])];
        let withdrawal = Bytes::from(vec![9u8; 76]);
        let hash = requests_hash(&ChainSpec::mainnet(), &receipts, [withdrawal.clone(), Bytes::new()]).unwrap().unwrap();
        let mut deposit = vec![DEPOSIT_REQUEST_TYPE];
        for (i, n) in DEPOSIT_LAYOUT.iter().enumerate() {
            deposit.extend(vec![i as u8 + 1; *n]);
        }
        let mut withdrawal_request = vec![WITHDRAWAL_REQUEST_TYPE];
        withdrawal_request.extend_from_slice(&withdrawal);
        let expected = Requests::new(vec![deposit.into(), withdrawal_request.into()]).requests_hash();
        assert_eq!(hash, expected);
        assert_ne!(hash, EMPTY_REQUESTS_HASH);
    }

    #[test]
    fn a_malformed_deposit_makes_the_block_invalid_and_other_chains_are_unknown() {
        let bad = [receipt(vec![deposit_log([48, 32, 8, 95, 8])])];
        assert!(matches!(requests_hash(&ChainSpec::mainnet(), &bad, [Bytes::new(), Bytes::new()]), Err(EngineError::InvalidBlock(_))));
        let anvil = ChainSpec::fixed(31337, revm::primitives::hardfork::SpecId::PRAGUE);
        assert_eq!(requests_hash(&anvil, &[], [Bytes::new(), Bytes::new()]).unwrap(), None);
    }
}
