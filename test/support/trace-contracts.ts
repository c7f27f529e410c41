// Contracts whose transactions exercise every part of a call trace: nested calls with value,
// delegatecall, staticcall, CREATE and CREATE2 from a contract, self-destructs (of a contract
// created in the same transaction, and of an older one), reverts with a reason string and with a
// custom error, an out-of-gas subcall, precompile calls, logs inside calls, value transfers
// inside calls, and the code an EIP-7702 delegated account runs. Compiled with the solc package.
import type { Abi, Hex } from 'viem'

export const TRACE_SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

error Custom(uint256 code, string why);

contract Child {
    event Born(address who, uint256 value);
    constructor() payable { emit Born(msg.sender, msg.value); }
    function kill(address payable to) external { selfdestruct(to); }
}

contract Lib {
    uint256 public stored;
    event Delegated(address self, uint256 v);
    function set(uint256 v) external { stored = v; emit Delegated(address(this), v); }
}

contract Probe {
    uint256 public stored;
    mapping(uint256 => uint256) public data;
    event Step(uint256 indexed depth, bytes32 h);

    function nested(uint256 depth) public payable returns (uint256) {
        emit Step(depth, keccak256(abi.encode(depth)));
        data[depth] += 1;
        if (depth == 0) return 1;
        return this.nested{value: msg.value / 2}(depth - 1) + 1;
    }
    function delegate(address lib, uint256 v) external {
        (bool ok, ) = lib.delegatecall(abi.encodeCall(Lib.set, (v)));
        require(ok, "delegate failed");
    }
    function staticRead(address target) external returns (uint256 v) {
        v = Probe(payable(target)).stored();
        data[7] = v + 1;
    }
    function create(uint256 value) external payable returns (address) {
        return address(new Child{value: value}());
    }
    function create2(bytes32 salt) external returns (address) {
        return address(new Child{salt: salt}());
    }
    function createAndKill(bytes32 salt, address payable to) external payable {
        Child c = new Child{salt: salt, value: msg.value}();
        c.kill(to);
    }
    function killOther(address child, address payable to) external {
        Child(child).kill(to);
    }
    function revertReason() external pure {
        revert("nope: a reason string");
    }
    function revertCustom() external pure {
        revert Custom(42, "custom error");
    }
    function innerRevert(address target) external returns (bool ok) {
        (ok, ) = target.call(abi.encodeCall(Probe.revertReason, ()));
        data[1] = ok ? 1 : 2;
    }
    function innerCustom(address target) external {
        Probe(payable(target)).revertCustom();
    }
    function innerOutOfGas(address target) external returns (bool ok) {
        (ok, ) = target.call{gas: 30000}(abi.encodeCall(Probe.burn, (1000)));
        data[2] = ok ? 1 : 2;
    }
    function burn(uint256 n) external {
        for (uint256 i; i < n; i++) data[100 + i] = i + 1;
    }
    function precompiles() external returns (bytes32 a, address b, bytes memory c) {
        a = sha256("abc");
        b = ecrecover(bytes32(uint256(1)), 27, bytes32(uint256(2)), bytes32(uint256(3)));
        (, c) = address(4).staticcall("identity");
        bytes20 r = ripemd160("x");
        (, bytes memory m) = address(5).staticcall(abi.encodePacked(uint256(1), uint256(1), uint256(1), uint8(3), uint8(5), uint8(7)));
        data[3] = uint256(a) ^ uint256(uint160(b)) ^ uint256(bytes32(r)) ^ m.length;
    }
    function pay(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "pay failed");
    }
    function payMany(address payable[] calldata to) external payable {
        for (uint256 i; i < to.length; i++) to[i].transfer(msg.value / to.length);
    }
    receive() external payable {}
}

contract Delegated {
    uint256 public counter;
    event Hello(address self, address sender, uint256 value, uint256 counter);
    function hello() external payable {
        counter += 1;
        emit Hello(address(this), msg.sender, msg.value, counter);
    }
    function forward(address payable to) external payable {
        to.transfer(msg.value);
    }
}
`

export type Compiled = Record<'Child' | 'Lib' | 'Probe' | 'Delegated', { abi: Abi; bytecode: Hex }>

let cached: Compiled | undefined

export function traceContracts(): Compiled {
  if (cached) return cached
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require('solc') as { compile(input: string): string }
  const input = {
    language: 'Solidity',
    sources: { 'Trace.sol': { content: TRACE_SOURCE } },
    settings: { evmVersion: 'prague', optimizer: { enabled: true, runs: 200 }, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  }
  const out = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[]
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>
  }
  const errors = (out.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'))
  const c = out.contracts['Trace.sol']!
  const get = (name: keyof Compiled) => ({ abi: c[name]!.abi, bytecode: `0x${c[name]!.evm.bytecode.object}` as Hex })
  cached = { Child: get('Child'), Lib: get('Lib'), Probe: get('Probe'), Delegated: get('Delegated') }
  return cached
}
