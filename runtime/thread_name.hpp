// name_this_thread: the name a thread shows in top -H, perf and
// /proc/<pid>/task/<tid>/comm. A new thread inherits its creator's name, so
// a thread we start names itself first: otherwise every thread started from
// CAF's multiplexer shows as "caf.multiplexer" and profiles cannot tell them
// apart.
#pragma once

#include <pthread.h>

#include <string>

namespace troupe {

/// Linux keeps 15 characters of a thread's name; longer ones are cut.
inline void name_this_thread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

} // namespace troupe
