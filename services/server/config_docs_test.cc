// docs/configuration.md holds the table `leadflow config docs` prints, for this build's views.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "services/config/config.h"
#include "services/server/views.h"

namespace leadflow::server {
namespace {

TEST(ConfigDocsTest, DocsConfigurationMdHoldsTheCurrentTable) {
  std::ifstream in(LEADFLOW_CONFIGURATION_MD);
  ASSERT_TRUE(in) << LEADFLOW_CONFIGURATION_MD;
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_THAT(text.str(), ::testing::HasSubstr(config::ConfigLoader(ViewNames()).Markdown()))
      << "docs/configuration.md is out of date: regenerate its table with "
         "`build/bin/leadflow config docs`";
}

}  // namespace
}  // namespace leadflow::server
