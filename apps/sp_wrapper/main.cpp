// sp_wrapper: what Salt starts on every target; runs one job and streams it to spd.
// The wiring (flags, detaching) lives in wrapper_cli.cpp, the agent in libsaltpeter.
#include <exception>
#include <iostream>

#include "wrapper_cli.hpp"

int main(int argc, char** argv) {
    try {
        return sp_wrapper::run_cli(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "sp_wrapper: " << e.what() << "\n";
        return 1;
    }
}
