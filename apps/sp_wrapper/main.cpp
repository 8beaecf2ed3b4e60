#include <iostream>

#include "saltpeter/version.hpp"

int main() {
    std::cout << "sp_wrapper " << saltpeter::version() << "\n";
    return 0;
}
