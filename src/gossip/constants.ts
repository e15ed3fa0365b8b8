/** Wire constants of the model exchange, each with the reason for its default. */

/** Protocol id negotiated for model transfers; a codec change that old peers cannot read needs a new id. */
export const MODEL_PROTOCOL = '/gossip-learn/model/1.0.0'

/**
 * Protocol id of nodes that apply delta frames (header version 2) and acknowledge them. A node
 * handles both ids with one handler; a delta sender dials this one first and, when the receiver
 * speaks only MODEL_PROTOCOL (a node from before delta frames), sends it plain frames of its inner
 * codec instead of frames that node would refuse.
 */
export const DELTA_PROTOCOL = '/gossip-learn/model/2.0.0'

/**
 * Protocol id of nodes that also read partial frames leaving quiet inputs out (a `within` in the
 * header; codecs/partial.ts). A node before them would take such a frame for a short payload and
 * refuse the sender: a sender with quiet inputs dials this id first and, when the receiver speaks
 * only DELTA_PROTOCOL or MODEL_PROTOCOL, sends it the same frames with every input row.
 */
export const QUIET_PROTOCOL = '/gossip-learn/model/2.1.0'

/** Version inside the header; lets a peer tell a stale sender from garbage. */
export const WIRE_VERSION = 1

/**
 * Version of delta frames (a `base` in the header: values relative to a reference the receiver
 * holds). A node that predates them refuses the version instead of merging differences as if
 * they were weights; every frame without a base stays version 1.
 */
export const DELTA_WIRE_VERSION = 2

/** The codec-spec prefix of delta frames (`delta+partial:0.25+int2`), also the name they are counted under. */
export const DELTA = 'delta'

/**
 * The byte a receiver writes back once it has applied a delta frame, before closing: a sender
 * cannot otherwise tell a frame applied from one refused after its last byte, and a reference
 * it believed shared would silently diverge.
 */
export const DELTA_ACK = 1

/**
 * Largest header accepted. A header is names + shapes of a few dozen tensors
 * plus a coordinate: under 2 KiB for our architectures. 64 KiB is generous and
 * still small enough to buffer before validating.
 */
export const MAX_HEADER_BYTES = 64 * 1024

/** Most tensors a header may list (our architectures have 4-8). */
export const MAX_TENSORS = 256

/** Most dimensions a tensor shape may have (conv kernels have 4). */
export const MAX_RANK = 8

/**
 * Most units one slice of a partial frame may list: a group's size bounds it anyway (our widest
 * layer has 4096 units); the cap stops a header from making the decoder walk a huge list.
 */
export const MAX_SLICE_UNITS = 65_536

/** Most components of a network coordinate (Vivaldi uses 2 + height). */
export const MAX_COORDINATE_DIMS = 16

/** Longest tensor name, task id or arch fingerprint, in bytes of the header. */
export const MAX_NAME_LENGTH = 256

/**
 * Hard cap on a whole frame (prefix + header + payload) whatever the
 * configuration: 64 MiB is 16M float32, 6x our largest model.
 */
export const HARD_MAX_FRAME_BYTES = 64 * 1024 * 1024

/** Added to the expected layout's size when deriving maxFrameBytes: room for the header. */
export const FRAME_SLACK_BYTES = MAX_HEADER_BYTES + 16

/**
 * A transfer that receives nothing for this long is dropped. Stream
 * inactivityTimeout is stored but not enforced by libp2p 3, so the exchange
 * keeps its own timer. 10 s covers GC pauses and a busy 2-core testbed.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000

/** Deadline for one whole transfer: 8 MiB at 1 MiB/s takes 8 s; 60 s leaves room for slow links. */
export const DEFAULT_TOTAL_TIMEOUT_MS = 60_000

/**
 * Inbound transfers in progress at once. Each holds a payload buffer of up to maxFrameBytes
 * (the expected model's size plus a header), so this bounds the memory a flood of pushes can
 * take: 8 default models are 3.3 MB. A slot is held for a whole transfer, and across a slow
 * wide-area path one lasts seconds, so the count must cover arrivals x transfer time, not the
 * CPU: slots are servers of an Erlang-B loss system. With uniform sampling on the default
 * 3-region links at 1 % loss, a peer was offered 0.88 pushes/s, most from other regions and
 * lasting 1.6-4.9 s (about 2.2 Erlangs), and 4 slots refused 11-12.5 % of them, as Erlang
 * B(4, 2.2) = 11.7 % predicts; B(8, 2.2) is 0.15 % (docs/BENCHMARKS.md, bench:topology).
 */
export const DEFAULT_MAX_CONCURRENT_INBOUND = 8

/**
 * Inbound transfers one remote peer may have in progress at once. An honest learner pushes one
 * model at a time to a given peer, but its push ends when its side of the stream closes, while
 * our side may still be reading and validating it; on a loaded machine its next push to us then
 * overlaps, and with 1 it was refused, counted as a failed push and the peer evicted from the
 * view (a 3-daemon e2e stalled that way). 2 absorbs that overlap and still keeps one peer from
 * holding more than half of the global slots.
 */
export const DEFAULT_MAX_INBOUND_PER_PEER = 2

/**
 * Of the global inbound slots, this many are kept for known-good peers (the daemon: a positive
 * peer-policy score). A handful of fresh identities holding every other slot still cannot keep
 * out a peer whose models we have been accepting. 1 of 8: seven strangers may transfer at once.
 */
export const DEFAULT_RESERVED_INBOUND = 1

/** Streams of this protocol one connection may have open; the learner pushes one model at a time per peer. */
export const MAX_STREAMS_PER_CONNECTION = 2

/**
 * Payload slice handed to stream.send(), as a view (no copy). Noise splits
 * everything into 64 KiB messages anyway; 64 KiB to 4 MiB measured the same
 * (docs/BENCHMARKS.md), 256 KiB keeps the number of send() calls low.
 */
export const DEFAULT_CHUNK_BYTES = 256 * 1024

/** How long stream.close() may wait for buffered data to drain after a transfer. */
export const CLOSE_TIMEOUT_MS = 5_000
