/**
 * Peer policy: a decaying score per peer fed by every verdict, and the refusal of peers whose
 * score reaches the ban threshold. The host reports verdicts with `policy.report(peerId, {
 * verdict, reason })`, installs `policyGater(policy)` as the libp2p connection gater, and on
 * `onBan` drops the peer from its view and hangs up.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import { TruncatedFrameError, type Verdict } from '../errors.ts'
import {
  PeerPolicy,
  type PeerPolicyComponents,
  type PeerPolicyInit,
  type PolicyReport,
} from './peer-policy.ts'

export {
  DEFAULT_BAN_THRESHOLD,
  DEFAULT_COOLING_OFF_MS,
  DEFAULT_HALF_LIFE_MS,
  DEFAULT_MAX_PEERS,
  DEFAULT_MAX_SCORE,
  DEFAULT_SOFT_FLOOR,
  DEFAULT_SUSPECT_SCORE,
  DEFAULT_WEIGHTS,
  POLICY_VERDICTS,
  type PolicyVerdict,
} from './constants.ts'
export {
  type OnBan,
  PeerPolicy,
  type PeerPolicyComponents,
  type PeerPolicyInit,
  type PolicyCounters,
  type PolicyReport,
  type RefusedPeer,
} from './peer-policy.ts'

/** Build a peer policy (defaults in constants.ts). */
export function createPeerPolicy(components: PeerPolicyComponents, init?: PeerPolicyInit): PeerPolicy {
  return new PeerPolicy(components, init)
}

/**
 * The policy report for an inbound model transfer the exchange refused. A frame cut short is only
 * an 'ignore': an honest sender's push aborted by its deadline, its shutdown or a dropped link
 * arrives as a stream reset mid-frame, and it cost us no more than the bytes read.
 */
export function reportForRejection(err: Error, verdict: Verdict): PolicyReport {
  if (err instanceof TruncatedFrameError) return { verdict: 'ignore', reason: err.name }
  return { verdict, reason: err.name }
}

/**
 * A libp2p connection gater that refuses what the policy refuses: our dials to the peer and its
 * connections in either direction once its identity is known (after the encryption handshake).
 */
export function policyGater(policy: Pick<PeerPolicy, 'isRefused'>): ConnectionGater {
  const refused = (peer: PeerId): boolean => policy.isRefused(peer.toString())
  return {
    denyDialPeer: refused,
    denyInboundEncryptedConnection: refused,
    denyOutboundEncryptedConnection: refused,
  }
}
