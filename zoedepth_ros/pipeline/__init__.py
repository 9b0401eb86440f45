"""The per-frame pipeline, ROS-free: options declared once, the output table and its one
message builder, one frame's path through the model (predict) and one camera stream's
(camera: pairing, newest-frame hand-over, worker, counters, sparse samples)."""
