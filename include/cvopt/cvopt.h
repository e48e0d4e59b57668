/* SPDX-License-Identifier: MIT */
#pragma once

/* Everything of libcvopt, the engine. */
#include "cvopt/errors.h"
#include "cvopt/tensor.h"
#include "cvopt/graph.h"
#include "cvopt/model.h"
#include "cvopt/engine.h"
#include "cvopt/quant.h"
#include "cvopt/image.h"
#include "cvopt/dataset.h"
