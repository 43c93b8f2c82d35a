"""Adaptive encoding: the smallest file that meets a perceptual target, where a viewer looks
(:mod:`pixelmill.compress.target`, :mod:`pixelmill.compress.regions`,
:mod:`pixelmill.compress.sample`), in the format that makes it smallest
(:mod:`pixelmill.compress.choose`). It sits above the codecs and below the engine, whose last
stage (:mod:`pixelmill.engine.targeted`) calls it."""
