// Sends value transfers with viem, as a TypeScript dapp would, and prints what happened as one
// JSON object. Used by tests/tests/eth.rs; no Twinpeg code on this side.
//
// usage: node viem_send.mjs RPC_URL PRIVATE_KEY TO VALUE COUNT
//
// Sends COUNT transfers of VALUE base units back to back with `sendTransaction` (viem fills
// nonce, gas and fees itself: legacy where the latest block has no base fee, else EIP-1559),
// without waiting in between, then waits for every receipt.
import { createPublicClient, createWalletClient, defineChain, http, keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const [url, key, to, value, count] = process.argv.slice(2);
const transport = http(url, { timeout: 60_000 });
const probe = createPublicClient({ transport });
const id = await probe.getChainId();
const chain = defineChain({
  id,
  name: `twinpeg-${id}`,
  nativeCurrency: { name: "Twinpeg coin", symbol: "TPG", decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const account = privateKeyToAccount(key);
const pub = createPublicClient({ chain, transport });
const wallet = createWalletClient({ account, chain, transport });
const latest = await pub.getBlock();
const before = await pub.getBalance({ address: account.address });
const hashes = [];
for (let i = 0; i < Number(count); i++) {
  // viem's own path: it asks the pending nonce, estimates gas and prices the fee.
  const request = await wallet.prepareTransactionRequest({ to, value: BigInt(value) });
  const raw = await wallet.signTransaction(request);
  const hash = await wallet.sendRawTransaction({ serializedTransaction: raw });
  if (hash !== keccak256(raw)) throw new Error(`the node returned ${hash}, not keccak256 of the bytes`);
  hashes.push(hash);
}
const receipts = await Promise.all(
  hashes.map((hash) => pub.waitForTransactionReceipt({ hash, timeout: 120_000, pollingInterval: 200 })),
);
const last = receipts.reduce((m, r) => (r.blockNumber > m ? r.blockNumber : m), 0n);
const after = await pub.getBalance({ address: account.address, blockNumber: last });
console.log(
  JSON.stringify({
    legacy: latest.baseFeePerGas == null,
    before: before.toString(),
    after: after.toString(),
    receipts: receipts.map((r) => ({
      hash: r.transactionHash,
      status: r.status === "success" ? 1 : 0,
      type: r.type,
      gasUsed: Number(r.gasUsed),
      effectiveGasPrice: r.effectiveGasPrice.toString(),
      blockNumber: Number(r.blockNumber),
    })),
  }),
);
