"""Peer transport: codec (domain <-> protobuf envelopes), framing, PQ channel adapter, mesh.

Runtime wiring:
    factory = PqChannelFactory(identity_signer, peer_keys, chain_id, frame_bytes_max)
    mesh = PeerMesh(node_id, host, port, peers, factory, frame_bytes_max, send_queue_max,
                    reconnect_backoff_max_ms)
    await nursery.start(mesh.run)
    outbox = EnvelopeOutbox(mesh, chain_id)            # the driver's Outbox
    async for peer, envelope in receive_envelopes(mesh, chain_id, nodes,
                                                  envelope_bytes_max=frame_bytes_max): ...
"""
