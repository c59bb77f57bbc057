"""The TensorFlow frontend: `tf::` operators (catalogue), their lowering inside a tf.function
(model), the TF eager reference and the standalone repro. TensorFlow itself is imported only
by `fuzzer.tf.env.tf()`, which only worker processes (and tests) call."""
