"""Sends value transfers with web3.py + eth-account, as a Python dapp would, and prints what
happened as one JSON object. Used by tests/tests/eth.rs; no Twinpeg code on this side.

usage: web3_send.py RPC_URL PRIVATE_KEY TO VALUE COUNT

Sends COUNT transfers of VALUE base units back to back (nonces from the pool-aware
`pending` count, without waiting in between), then waits for every receipt. Fees as web3.py
users set them: `gasPrice` where the latest block has no base fee, else EIP-1559 fields from
the base fee and `eth_maxPriorityFeePerGas`.
"""
import json
import sys

from eth_account import Account
from web3 import Web3


def main():
    url, key, to, value, count = sys.argv[1:6]
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    acct = Account.from_key(key)
    chain_id = w3.eth.chain_id
    latest = w3.eth.get_block("latest")
    nonce = w3.eth.get_transaction_count(acct.address, "pending")
    before = w3.eth.get_balance(acct.address)
    hashes = []
    for i in range(int(count)):
        tx = {
            "chainId": chain_id,
            "nonce": nonce + i,
            "to": Web3.to_checksum_address(to),
            "value": int(value),
            "gas": w3.eth.estimate_gas({"from": acct.address, "to": Web3.to_checksum_address(to), "value": int(value)}),
        }
        if "baseFeePerGas" in latest:
            tip = w3.eth.max_priority_fee
            tx["maxPriorityFeePerGas"] = tip
            tx["maxFeePerGas"] = 2 * latest["baseFeePerGas"] + tip
        else:
            tx["gasPrice"] = w3.eth.gas_price
        signed = acct.sign_transaction(tx)
        h = w3.eth.send_raw_transaction(signed.raw_transaction)
        assert h == Web3.keccak(signed.raw_transaction), "the node returned another hash"
        hashes.append(h)
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.2) for h in hashes]
    after_block = max(r["blockNumber"] for r in receipts)
    print(json.dumps({
        "legacy": "baseFeePerGas" not in latest,
        "before": str(before),
        "after": str(w3.eth.get_balance(acct.address, after_block)),
        "receipts": [{
            "hash": r["transactionHash"].to_0x_hex(),
            "status": r["status"],
            "type": r["type"],
            "gasUsed": r["gasUsed"],
            "effectiveGasPrice": str(r["effectiveGasPrice"]),
            "blockNumber": r["blockNumber"],
        } for r in receipts],
    }))


if __name__ == "__main__":
    main()
