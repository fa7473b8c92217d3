/// @file
/// bpool/bpool.hpp: the whole public API in one include.
#pragma once

#include <bpool/async.hpp>
#include <bpool/buffer.hpp>
#include <bpool/buffer_pool.hpp>
#include <bpool/errors.hpp>
#include <bpool/global.hpp>
#include <bpool/pool_options.hpp>
#include <bpool/pool_resource.hpp>
#include <bpool/stats.hpp>
#include <bpool/version.hpp>
